import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLayout, decayRanges } from '../../src/model/layout.js';
import { getPreset, PRESETS } from '../../src/config/presets.js';
import { countParams } from '../../src/model/count.js';

test('layout: decayed matrices then vectors, two AdamW ranges, fused tensors adjacent, no gaps or overlaps', () => {
  for (const name of Object.keys(PRESETS)) {
    const cfg = getPreset(name);
    const L = buildLayout(cfg);
    const ranges = decayRanges(L);
    assert.equal(ranges.length, 2, name);
    assert.deepEqual(ranges.map((r) => r.decay), [true, false]);
    let end = 0;
    for (const p of L.params) {
      assert.equal(p.offset, end, `${name}: ${p.name} not contiguous`);
      end += p.size;
    }
    assert.equal(end, L.total);
    assert.equal(L.total, countParams(cfg).total, `${name}: layout and count disagree`);
    if (cfg.family !== 'gpt2') {
      const q = L.byName.get('model.layers.0.self_attn.q_proj.weight')!;
      const k = L.byName.get('model.layers.0.self_attn.k_proj.weight')!;
      const v = L.byName.get('model.layers.0.self_attn.v_proj.weight')!;
      assert.equal(k.offset, q.offset + q.size);
      assert.equal(v.offset, k.offset + k.size);
      assert.equal(L.layers[0]!.qkvW, q.offset);
      const g = L.byName.get('model.layers.0.mlp.gate_proj.weight')!;
      const u = L.byName.get('model.layers.0.mlp.up_proj.weight')!;
      assert.equal(u.offset, g.offset + g.size);
    }
  }
});
