/** Short human forms of the numbers in reports and on the dashboard. Non-finite or missing values print as '—'. */

const DASH = '—';
const ok = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);

/** 20268032 -> '20.27M', 262144 -> '262.1k', 950 -> '950'. */
export function fmtCount(x: number | null | undefined): string {
  if (!ok(x)) return DASH;
  const a = Math.abs(x);
  if (a >= 1e12) return `${(x / 1e12).toFixed(2)}T`;
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return a >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toPrecision(3);
}

/** 1.254e8 -> '1.25e8'. */
export function fmtSci(x: number | null | undefined, digits = 2): string {
  return ok(x) ? x.toExponential(digits).replace('e+', 'e') : DASH;
}

export function fmtFixed(x: number | null | undefined, digits: number): string {
  return ok(x) ? x.toFixed(digits) : DASH;
}

/** Bytes in binary units: '412 MiB', '1.10 GiB'. */
export function fmtBytes(x: number | null | undefined): string {
  if (!ok(x)) return DASH;
  if (x >= 2 ** 30) return `${(x / 2 ** 30).toFixed(2)} GiB`;
  if (x >= 2 ** 20) return `${(x / 2 ** 20).toFixed(0)} MiB`;
  return `${(x / 2 ** 10).toFixed(0)} KiB`;
}

/** 75 -> '1m15s', 3725 -> '1h02m'. */
export function fmtDuration(seconds: number | null | undefined): string {
  if (!ok(seconds) || seconds < 0) return DASH;
  const s = Math.round(seconds);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
}
