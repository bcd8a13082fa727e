/**
 * The live dashboard's server: a page listing the runs under a directory, their configs and status, and their
 * curves, updated while they train. The page learns of changes through server-sent events (/api/events, a scan
 * of the directory every `scanMs`) and fetches only the bytes of metrics.jsonl it has not seen (/api/metrics).
 *
 * What it serves is a fixed list: the page, its script, the chart module (chart.js, shared with the PNG reports),
 * ECharts from node_modules, and the API. Nothing else is a route, so no request reaches a file outside DIR or one
 * inside it that is not a run's metrics or config: a path with `..`, a backslash or an absolute form is refused
 * with 403, any other unknown path gets 404. It binds to 127.0.0.1 unless told otherwise, and then also refuses a
 * request whose Host header is not a loopback name (a web page elsewhere cannot reach it by DNS rebinding).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, type Dirent } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUN_FILES } from '../io/run-dir.js';
import { isSweepDir, readSweepState, type SweepState } from '../io/sweep-dir.js';

export interface DashboardOptions {
  /** The directory whose runs are shown (searched a few levels deep). */
  dir: string;
  /** Address to bind (default 127.0.0.1, loopback only). */
  host?: string;
  /** Port (default 8090; 0 picks a free one). */
  port?: number;
  /** How often the directory is scanned for changes, in ms (default 1000). */
  scanMs?: number;
}

export interface Dashboard {
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

export type RunStatus = 'running' | 'done' | 'failed' | 'pending' | 'stopped';

export interface RunInfo {
  /** Path relative to DIR, with '/' separators: the run's name in every API call. */
  id: string;
  /** The sweep it belongs to (the parent directory's sweep name), if any. */
  sweep: string | null;
  status: RunStatus;
  /** Last step with a record, and the steps configured. */
  step: number;
  steps: number | null;
  /** Bytes of metrics.jsonl (the page fetches what it has not seen). */
  size: number;
  mtimeMs: number;
  trainConfig: Record<string, unknown> | null;
  modelConfig: Record<string, unknown> | null;
  error?: string;
}

export const DEFAULT_PORT = 8090;
/** A run whose metrics changed this recently, and is not finished, is shown as running. */
const RUNNING_WINDOW_MS = 120_000;
const MAX_DEPTH = 5;
const SKIP_DIRS = new Set(['checkpoints', 'plots', 'report', 'node_modules']);

const require = createRequire(import.meta.url);
const HERE = dirname(fileURLToPath(import.meta.url));
/** The page's files: src/report/dashboard/ (beside this file in src/, three levels up from dist/src/report/). */
const PAGE_DIR = existsSync(join(HERE, 'dashboard', 'index.html')) ? join(HERE, 'dashboard') : join(HERE, '..', '..', '..', 'src', 'report', 'dashboard');
const ECHARTS = join(dirname(require.resolve('echarts')), 'echarts.min.js');

/** Fixed routes: URL path -> [file, content type]. */
const STATIC: Record<string, [string, string]> = {
  '/': [join(PAGE_DIR, 'index.html'), 'text/html; charset=utf-8'],
  '/app.js': [join(PAGE_DIR, 'app.js'), 'text/javascript; charset=utf-8'],
  '/chart.js': [join(HERE, 'chart.js'), 'text/javascript; charset=utf-8'],
  '/echarts.min.js': [ECHARTS, 'text/javascript; charset=utf-8'],
};

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Whether a request path tries to leave the served tree: '..' in any encoding, backslashes, '//' or a drive. */
export function isTraversal(rawUrl: string): boolean {
  let decoded = rawUrl;
  for (let i = 0; i < 3; i++) {
    try {
      const d = decodeURIComponent(decoded);
      if (d === decoded) break;
      decoded = d;
    } catch {
      return true;
    }
  }
  const p = decoded.split('?')[0]!;
  return /(^|[\\/])\.\.([\\/]|$)/.test(decoded) || p.includes('\\') || p.startsWith('//') || /^[A-Za-z]:/.test(p) || !p.startsWith('/');
}

function readJson(file: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The step of the last complete record of a metrics file (reads only its tail). */
function lastStep(file: string, size: number): number {
  if (size === 0) return 0;
  const n = Math.min(size, 16384);
  const buf = Buffer.alloc(n);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, n, size - n);
  } finally {
    closeSync(fd);
  }
  const lines = buf.toString('utf8').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /"step":(\d+)/.exec(lines[i]!);
    if (m && lines[i]!.trim().endsWith('}')) return Number(m[1]);
  }
  return 0;
}

/** Finds the run directories under root (not following symbolic links, so nothing outside root is listed). */
export function findRuns(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, depth: number): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    const names = new Set(entries.map((e) => e.name));
    if (names.has(RUN_FILES.metrics) || names.has(RUN_FILES.trainConfig)) {
      // Ids are keys, not paths the server opens: DIR itself, when it is a run, goes by its name.
      out.set(dir === root ? basename(root) : relative(root, dir).split(sep).join('/'), dir);
      return;
    }
    if (depth >= MAX_DEPTH) return;
    for (const e of entries)
      if (e.isDirectory() && !e.name.startsWith('.') && !SKIP_DIRS.has(e.name)) walk(join(dir, e.name), depth + 1);
  };
  walk(root, 0);
  return out;
}

class RunIndex {
  runs = new Map<string, string>();
  private info = new Map<string, { key: string; info: RunInfo }>();
  private sweeps = new Map<string, { mtimeMs: number; state: SweepState | null }>();

  constructor(private readonly root: string) {}

  private sweepOf(dir: string): SweepState | null {
    const parent = dirname(dir);
    if (!isSweepDir(parent)) return null;
    const m = statSync(join(parent, 'sweep.json')).mtimeMs;
    const cached = this.sweeps.get(parent);
    if (cached && cached.mtimeMs === m) return cached.state;
    let state: SweepState | null = null;
    try {
      state = readSweepState(parent);
    } catch {
      state = null;
    }
    this.sweeps.set(parent, { mtimeMs: m, state });
    return state;
  }

  scan(): RunInfo[] {
    this.runs = findRuns(this.root);
    const list: RunInfo[] = [];
    for (const [id, dir] of this.runs) {
      const metrics = join(dir, RUN_FILES.metrics);
      const st = existsSync(metrics) ? statSync(metrics) : null;
      const sweep = this.sweepOf(dir);
      const variant = sweep?.variants.find((v) => join(dirname(dir), v.runDir) === dir);
      const key = `${st?.size ?? -1}:${st?.mtimeMs ?? 0}:${variant?.state ?? ''}:${Math.floor(Date.now() / RUNNING_WINDOW_MS)}`;
      const cached = this.info.get(id);
      if (cached && cached.key === key) {
        list.push(cached.info);
        continue;
      }
      const trainConfig = readJson(join(dir, RUN_FILES.trainConfig));
      const modelConfig = readJson(join(dir, RUN_FILES.modelConfig));
      const step = st ? lastStep(metrics, st.size) : 0;
      const steps = typeof trainConfig?.steps === 'number' ? trainConfig.steps : null;
      let status: RunStatus;
      if (variant) status = variant.state === 'running' && st && Date.now() - st.mtimeMs > RUNNING_WINDOW_MS ? 'stopped' : variant.state;
      else if (steps !== null && step >= steps) status = 'done';
      else status = st && Date.now() - st.mtimeMs < RUNNING_WINDOW_MS ? 'running' : 'stopped';
      const info: RunInfo = {
        id, sweep: sweep?.name ?? null, status, step, steps, size: st?.size ?? 0, mtimeMs: st?.mtimeMs ?? 0, trainConfig, modelConfig,
        ...(variant?.error ? { error: variant.error } : {}),
      };
      this.info.set(id, { key, info });
      list.push(info);
    }
    return list.sort((a, b) => a.id.localeCompare(b.id));
  }
}

/** Complete lines of metrics.jsonl from byte `from` on; `reset` when the file was cut back (a resumed run). */
export function readMetricsFrom(file: string, from: number): { from: number; next: number; reset: boolean; lines: string[] } {
  const size = existsSync(file) ? statSync(file).size : 0;
  let reset = false;
  if (!(Number.isInteger(from) && from >= 0) || from > size) {
    from = 0;
    reset = true;
  }
  if (size === from) return { from, next: from, reset, lines: [] };
  const buf = Buffer.alloc(size - from);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  const end = buf.lastIndexOf(0x0a) + 1; // a torn last line waits for its newline
  const lines = buf.subarray(0, end).toString('utf8').split('\n').filter((l) => l.trim() !== '');
  return { from, next: from + end, reset, lines };
}

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
  });
  res.end(body);
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const root = resolve(opts.dir);
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new Error(`dashboard: '${opts.dir}' is not a directory; give the directory that holds your runs (e.g. runs)`);
  const host = opts.host ?? '127.0.0.1';
  const scanMs = opts.scanMs ?? 1000;
  const index = new RunIndex(root);
  let runs = index.scan();
  let signature = JSON.stringify(runs.map((r) => [r.id, r.size, r.status, r.step]));
  const clients = new Set<ServerResponse>();
  const loopbackOnly = isLoopback(host);
  let port = 0;

  const hostAllowed = (req: IncomingMessage): boolean => {
    if (!loopbackOnly) return true;
    const h = (req.headers.host ?? '').toLowerCase();
    const name = h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.replace(/:\d+$/, '');
    return isLoopback(name);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const raw = req.url ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET\n');
    if (!hostAllowed(req)) return send(res, 403, 'this dashboard answers to localhost only; start it with --host to serve another name\n');
    if (isTraversal(raw)) return send(res, 403, 'forbidden\n');
    const url = new URL(raw, 'http://localhost');
    const file = STATIC[url.pathname];
    if (file) return send(res, 200, readFileSync(file[0]), file[1]);
    if (url.pathname === '/favicon.ico') return send(res, 204, '');
    if (url.pathname === '/api/runs') return send(res, 200, JSON.stringify({ root: root.split(sep).pop(), runs }), 'application/json');
    if (url.pathname === '/api/metrics') {
      const id = url.searchParams.get('run') ?? '';
      if (id.startsWith('/') || id.split('/').includes('..')) return send(res, 403, 'forbidden\n');
      const dir = index.runs.get(id);
      if (!dir) return send(res, 404, `no run '${id}' under this dashboard's directory\n`);
      const from = Number(url.searchParams.get('from') ?? '0');
      return send(res, 200, JSON.stringify(readMetricsFrom(join(dir, RUN_FILES.metrics), from)), 'application/json');
    }
    if (url.pathname === '/api/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
      res.write(`event: runs\ndata: ${JSON.stringify({ runs })}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    send(res, 404, 'not found\n');
  };

  const server: Server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      send(res, 500, `dashboard error: ${(e as Error).message}\n`);
    }
  });
  const timer = setInterval(() => {
    runs = index.scan();
    const sig = JSON.stringify(runs.map((r) => [r.id, r.size, r.status, r.step]));
    if (sig !== signature) {
      signature = sig;
      for (const c of clients) c.write(`event: runs\ndata: ${JSON.stringify({ runs })}\n\n`);
    } else for (const c of clients) c.write(': idle\n\n'); // keeps proxies and the browser from timing out
  }, scanMs);
  timer.unref();
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(e.code === 'EADDRINUSE' ? new Error(`dashboard: port ${opts.port ?? DEFAULT_PORT} is in use; pick another with --port N (0 = any free port)`) : e),
    );
    server.listen(opts.port ?? DEFAULT_PORT, host, () => ok());
  });
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${port}/`,
    host,
    port,
    close: () =>
      new Promise<void>((ok) => {
        clearInterval(timer);
        for (const c of clients) c.end();
        clients.clear();
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
