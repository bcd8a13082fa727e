#!/usr/bin/env python3
"""The bf16 floor of a golden case, computed without lmforge.

A float64 forward and backward of a Qwen3/Llama golden case (../shared/golden, no GPT-2), written from the model's
definition with numpy only. Its changes from the exact reference are optional roundings to bf16 (round to nearest
even): the two operands of every matrix product (each linear layer and the head, forward, input-gradient and
weight-gradient), as autocast and lmforge's CUDA bf16 mode do, and the activations lmforge's bf16 mode stores in
bf16 (`store`: the outputs of the norms that feed GEMMs, of the q|k|v and gate|up GEMMs, of QK-norm + RoPE, of
attention and of SwiGLU, and their gradients dQ|dK|dV, the QK-prologue gradient, d(attention output), d(SwiGLU
output) and d(gate|up)), while everything else (statistics, softmax, loss, the residual stream and its gradient, all
sums) stays float64. The relative error of each gradient against expected.safetensors is then what those rounding
points alone cost, whatever engine computes them.

  python3 scripts/golden-bf16-floor.py [CASE_DIR] [--round OPERANDS] [--top N]

OPERANDS: comma-separated subset of  act,w,dy,dyw,wd,saved,store  or  all (default) or none, optionally with out:
  act   the activation X in the forward Y = X W^T          w     the weight W in the forward
  dy    dY in the input gradient dX = dY W                  wd    the weight W in dX = dY W
  dyw   dY in the weight gradient dW = dY^T X               saved the saved activation X in dW = dY^T X
  store the activations lmforge's bf16 mode stores in bf16 (above)
  out   (not an operand) every GEMM result rounded too, as autocast's bf16 outputs are: more rounding than lmforge
--only NAME rounds only in the GEMMs whose weight name contains NAME (e.g. layers.0., lm_head).
With `none` the script must reproduce the golden gradients to ~1e-7 (its own check).
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

ALL = ('act', 'w', 'dy', 'wd', 'dyw', 'saved', 'store')
EXTRA = ('out',)  # not an operand: every GEMM result rounded too, as autocast's bf16 outputs are (beyond lmforge)


def read_safetensors(path):
    raw = Path(path).read_bytes()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = memoryview(raw)[8 + n:]
    kinds = {'F32': np.float32, 'F64': np.float64, 'I64': np.int64, 'I32': np.int32}
    out = {}
    for name, meta in header.items():
        if name == '__metadata__':
            continue
        a, b = meta['data_offsets']
        out[name] = np.frombuffer(body[a:b], dtype=kinds[meta['dtype']]).reshape(meta['shape'])
    return out


def bf16(x):
    """Round to the nearest bf16 (ties to even), through float32 as the engine's fp32 values are."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


class Gemm:
    """Y = X W^T and its two gradients, each operand rounded or not as `rounded` says, in the GEMMs whose weight
    name contains `only` (all of them by default)."""

    def __init__(self, rounded, only=''):
        self.rounded, self.only = rounded, only

    def _r(self, kind, name, a):
        return bf16(a) if kind in self.rounded and self.only in name else a

    def store(self, a):
        """An activation lmforge's bf16 mode stores in its bf16 arena (not limited by --only)."""
        return bf16(a) if 'store' in self.rounded else a

    def fwd(self, x, w, name, stored=False):
        y = self._r('out', name, self._r('act', name, x) @ self._r('w', name, w).T)
        return self.store(y) if stored else y

    def bwd(self, dy, x, w, name, stored=False):
        dx = self._r('dy', name, dy) @ self._r('wd', name, w)
        dw = self._r('dyw', name, dy).T @ self._r('saved', name, x)
        dx = self._r('out', name, dx)
        return self.store(dx) if stored else dx, self._r('out', name, dw)


def rms(x, w, eps):
    r = 1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return x * r * w, (x * r, r)


def rms_bwd(dy, w, cache):
    xh, r = cache
    dw = (dy * xh).reshape(-1, xh.shape[-1]).sum(0)
    g = dy * w
    dx = r * (g - xh * (g * xh).mean(-1, keepdims=True))
    return dx, dw


def rope(x, cos, sin):  # x [..., T, hd], half-split
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)


def rope_bwd(d, cos, sin):
    h = d.shape[-1] // 2
    a, b = d[..., :h], d[..., h:]
    return np.concatenate([a * cos + b * sin, b * cos - a * sin], -1)


def run(case_dir, rounded, only=''):
    cfg = json.loads((case_dir / 'config.json').read_text())
    W = {k: v.astype(np.float64) for k, v in read_safetensors(case_dir / 'model.safetensors').items()}
    E = read_safetensors(case_dir / 'expected.safetensors')
    g = Gemm(rounded, only)
    ids, labels = E['input_ids'], E['labels']
    B, T = ids.shape
    D, H, KV = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_key_value_heads']
    hd = cfg.get('head_dim') or D // H
    eps = cfg['rms_norm_eps']
    qk_norm = cfg['model_type'] == 'qwen3'
    head_w = W.get('lm_head.weight', W['model.embed_tokens.weight'])
    freqs = np.arange(T)[:, None] * E['rope.inv_freq'][None, :]
    cos, sin = np.cos(freqs), np.sin(freqs)
    mask = np.triu(np.ones((T, T), bool), 1)
    grads = {k: np.zeros_like(v) for k, v in W.items()}
    L = cfg['num_hidden_layers']

    x = W['model.embed_tokens.weight'][ids]  # [B, T, D]
    caches = []
    for l in range(L):
        p = f'model.layers.{l}.'
        c = {'x': x}
        n1, c['n1'] = rms(x, W[p + 'input_layernorm.weight'], eps)
        n1 = g.store(n1)
        c['n1o'] = n1
        q = g.fwd(n1, W[p + 'self_attn.q_proj.weight'], p + 'self_attn.q_proj', True).reshape(B, T, H, hd).transpose(0, 2, 1, 3)
        k = g.fwd(n1, W[p + 'self_attn.k_proj.weight'], p + 'self_attn.k_proj', True).reshape(B, T, KV, hd).transpose(0, 2, 1, 3)
        v = g.fwd(n1, W[p + 'self_attn.v_proj.weight'], p + 'self_attn.v_proj', True).reshape(B, T, KV, hd).transpose(0, 2, 1, 3)
        if qk_norm:
            q, c['qn'] = rms(q, W[p + 'self_attn.q_norm.weight'], eps)
            k, c['kn'] = rms(k, W[p + 'self_attn.k_norm.weight'], eps)
        q, k = g.store(rope(q, cos, sin)), g.store(rope(k, cos, sin))
        kr, vr = np.repeat(k, H // KV, 1), np.repeat(v, H // KV, 1)
        s = q @ kr.transpose(0, 1, 3, 2) / np.sqrt(hd)
        s[..., mask] = -np.inf
        pr = np.exp(s - s.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        o = g.store((pr @ vr).transpose(0, 2, 1, 3).reshape(B, T, H * hd))
        c.update(q=q, kr=kr, vr=vr, pr=pr, o=o)
        h = x + g.fwd(o, W[p + 'self_attn.o_proj.weight'], p + 'self_attn.o_proj')
        n2, c['n2'] = rms(h, W[p + 'post_attention_layernorm.weight'], eps)
        n2 = g.store(n2)
        c['n2o'] = n2
        gt = g.fwd(n2, W[p + 'mlp.gate_proj.weight'], p + 'mlp.gate_proj', True)
        up = g.fwd(n2, W[p + 'mlp.up_proj.weight'], p + 'mlp.up_proj', True)
        sg = 1 / (1 + np.exp(-gt))
        a = g.store(gt * sg * up)
        c.update(gt=gt, up=up, sg=sg, a=a)
        x = h + g.fwd(a, W[p + 'mlp.down_proj.weight'], p + 'mlp.down_proj')
        caches.append(c)
    nf, cf = rms(x, W['model.norm.weight'], eps)
    nf = g.store(nf)
    logits = g.fwd(nf, head_w, 'lm_head')

    tgt = np.full((B, T), -100)
    tgt[:, :-1] = labels[:, 1:]
    keep = tgt != -100
    z = logits - logits.max(-1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    count = keep.sum()
    loss = -lp[keep, tgt[keep]].sum() / count
    dl = np.exp(lp)
    dl[keep, tgt[keep]] -= 1
    dl *= keep[..., None] / count

    dnf, dhw = g.bwd(dl.reshape(-1, dl.shape[-1]), nf.reshape(-1, D), head_w, 'lm_head')
    grads['lm_head.weight' if 'lm_head.weight' in W else 'model.embed_tokens.weight'] += dhw
    dx, grads['model.norm.weight'] = rms_bwd(dnf.reshape(B, T, D), W['model.norm.weight'], cf)
    for l in reversed(range(L)):
        p, c = f'model.layers.{l}.', caches[l]
        da, dwd = g.bwd(dx.reshape(-1, dx.shape[-1]), c['a'].reshape(B * T, -1), W[p + 'mlp.down_proj.weight'], p + 'mlp.down_proj', True)
        grads[p + 'mlp.down_proj.weight'] = dwd
        da = da.reshape(c['a'].shape)
        dgt = g.store(da * c['up'] * c['sg'] * (1 + c['gt'] * (1 - c['sg'])))
        dup = g.store(da * c['gt'] * c['sg'])
        n2 = c['n2o'].reshape(B * T, D)
        dn2a, grads[p + 'mlp.gate_proj.weight'] = g.bwd(dgt.reshape(B * T, -1), n2, W[p + 'mlp.gate_proj.weight'], p + 'mlp.gate_proj')
        dn2b, grads[p + 'mlp.up_proj.weight'] = g.bwd(dup.reshape(B * T, -1), n2, W[p + 'mlp.up_proj.weight'], p + 'mlp.up_proj')
        dh, grads[p + 'post_attention_layernorm.weight'] = rms_bwd((dn2a + dn2b).reshape(B, T, D), W[p + 'post_attention_layernorm.weight'], c['n2'])
        dh = dh + dx
        do, grads[p + 'self_attn.o_proj.weight'] = g.bwd(dh.reshape(B * T, D), c['o'].reshape(B * T, -1), W[p + 'self_attn.o_proj.weight'], p + 'self_attn.o_proj', True)
        do = do.reshape(B, T, H, hd).transpose(0, 2, 1, 3)
        pr, q, kr, vr = c['pr'], c['q'], c['kr'], c['vr']
        dvr = pr.transpose(0, 1, 3, 2) @ do
        dp = do @ vr.transpose(0, 1, 3, 2)
        # rowsum(dP * P) = rowsum(dO * O), which is what the engine computes, from its stored O
        o_heads = c['o'].reshape(B, T, H, hd).transpose(0, 2, 1, 3)
        ds = pr * (dp - (do * o_heads).sum(-1)[..., None]) / np.sqrt(hd)
        dq = ds @ kr
        dkr = ds.transpose(0, 1, 3, 2) @ q
        dk = dkr.reshape(B, KV, H // KV, T, hd).sum(2)
        dv = g.store(dvr.reshape(B, KV, H // KV, T, hd).sum(2))
        dq, dk = g.store(dq), g.store(dk)
        dq, dk = rope_bwd(dq, cos, sin), rope_bwd(dk, cos, sin)
        if qk_norm:
            dq, grads[p + 'self_attn.q_norm.weight'] = rms_bwd(dq, W[p + 'self_attn.q_norm.weight'], c['qn'])
            dk, grads[p + 'self_attn.k_norm.weight'] = rms_bwd(dk, W[p + 'self_attn.k_norm.weight'], c['kn'])
        dq, dk = g.store(dq), g.store(dk)
        n1 = c['n1o'].reshape(B * T, D)
        dn1 = 0
        for name, d in (('q', dq), ('k', dk), ('v', dv)):
            dn, grads[p + f'self_attn.{name}_proj.weight'] = g.bwd(d.transpose(0, 2, 1, 3).reshape(B * T, -1), n1, W[p + f'self_attn.{name}_proj.weight'], p + f'self_attn.{name}_proj')
            dn1 = dn1 + dn
        dx1, grads[p + 'input_layernorm.weight'] = rms_bwd(dn1.reshape(B, T, D), W[p + 'input_layernorm.weight'], c['n1'])
        dx = dh + dx1
    np.add.at(grads['model.embed_tokens.weight'], ids.reshape(-1), dx.reshape(-1, D))

    err = {}
    for k in grads:
        ref = E['grad.' + k].astype(np.float64)
        err['grad.' + k] = np.linalg.norm(grads[k] - ref) / np.linalg.norm(ref)
    err['logits'] = np.linalg.norm(logits - E['logits']) / np.linalg.norm(E['logits'])
    err['loss (abs)'] = abs(loss - E['loss'][0])
    return err, grads, E


def main(argv):
    global bf16  # --grids and --jitter swap the rounding function
    import argparse
    ap = argparse.ArgumentParser(description='bf16 floor of a golden case (float64, bf16 GEMM operands only)')
    default = Path(__file__).resolve().parents[2] / 'shared' / 'golden' / 'qwen3-tiny-tied'
    ap.add_argument('case', nargs='?', default=str(default))
    ap.add_argument('--round', default='all')
    ap.add_argument('--top', type=int, default=8)
    ap.add_argument('--only', default='', help='round only in the GEMMs whose weight name contains this')
    ap.add_argument('--grids', type=int, default=0, help='also round on N shifted bf16 grids (x*c rounded, /c, '
                    'c = 2^u, u uniform in [0,1)): the spread of the error over equally valid rounding decisions')
    ap.add_argument('--against', help="an engine's forward-backward output (safetensors): print its gradients' "
                    'distance from this computation, relative to the reference norm')
    ap.add_argument('--jitter', type=int, default=0, help='with --against: also rerun this computation N times with '
                    'every value perturbed by fp32-sized relative noise (6e-8) before each rounding, and print the '
                    "largest distance of those runs from the unperturbed one: how far an engine computing in fp32 "
                    'between the same rounding points may land (a value near a bf16 tie rounds the other way)')
    a = ap.parse_args(argv)
    rounded = set()
    for tok in a.round.split(','):
        rounded |= set(ALL) if tok == 'all' else set() if tok == 'none' else {tok}
    bad = rounded - set(ALL) - set(EXTRA)
    if bad:
        sys.exit(f'--round {a.round}: unknown operand(s) {sorted(bad)}; use a subset of {",".join(ALL)}, all or none')
    case_dir = Path(a.case).resolve()
    err, grads, expected = run(case_dir, rounded, a.only)
    if a.against:
        got = read_safetensors(a.against)
        dist = {k: np.linalg.norm(got['grad.' + k] - grads[k]) / np.linalg.norm(expected['grad.' + k]) for k in grads}
        k = max(dist, key=dist.get)
        print(f'{Path(a.against).name} vs this computation: largest gradient distance {dist[k]:.3e} ({k})')
        for k in sorted(dist, key=lambda k: -dist[k])[1:a.top]:
            print(f'  {dist[k]:.3e}  {k}')
        if a.jitter:
            rne, rng, worst = bf16, np.random.default_rng(1), 0.0
            for _ in range(a.jitter):
                bf16 = lambda x: rne(np.asarray(x) * (1 + 6e-8 * rng.standard_normal(np.shape(x))))  # noqa: E731
                g = run(case_dir, rounded, a.only)[1]
                worst = max(worst, max(np.linalg.norm(g[k] - grads[k]) / np.linalg.norm(expected['grad.' + k]) for k in grads))
            bf16 = rne
            print(f'jitter distance {worst:.3e} (largest over {a.jitter} fp32-perturbed runs)')
        return
    if a.grids:
        rne, rng, runs = bf16, np.random.default_rng(1), {}
        for _ in range(a.grids):
            c = 2 ** rng.uniform(0, 1)
            bf16 = lambda x, c=c: rne(np.asarray(x) * c) / c  # noqa: E731
            for k, e in run(case_dir, rounded, a.only)[0].items():
                runs.setdefault(k, []).append(e)
        bf16 = rne
        print(f'{case_dir.name}: over {a.grids} shifted bf16 grids (median, 90th percentile, max, share above 2e-2):')
        for k in sorted(runs, key=lambda k: -np.median(runs[k]))[:a.top]:
            v = np.array(runs[k])
            print(f'  {np.median(v):.2e} {np.quantile(v, 0.9):.2e} {v.max():.2e} {np.mean(v > 2e-2):4.0%}  {k}')
        return
    print(f'{case_dir.name}: bf16-rounded GEMM operands: {",".join(sorted(rounded)) or "none"}' + (f' in GEMMs matching {a.only}' if a.only else ''))
    for k, e in sorted(err.items(), key=lambda kv: -kv[1])[:a.top]:
        print(f'  {e:.3e}  {k}')


if __name__ == '__main__':
    main(sys.argv[1:])
