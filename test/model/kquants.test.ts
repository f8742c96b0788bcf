// `quantize` to llama.cpp's other types (q4_1, q5_0, q5_1, q4_k = Q4_K_S, q5_k = Q5_K_S, q6_k) and its mixes q4_k_m,
// q5_k_m, on a random llama model of real-ish shape (embedding 512, feed-forward 1536, 8 heads over 4 KV heads,
// 2 layers, vocabulary 1024; F16 source, so every row is a whole number of 256-value super-blocks): each file has
// llama.cpp's file type and per-tensor types, loads with every CPU variant, generates, and its logits stay within a
// tolerance of the F16 model's that follows from how precisely the type stores a weight. Also: llama.cpp's per-tensor
// rules on a 32-layer tensor list, and a q4_k_m of stories260K, whose rows (64, 172) need the fallback types.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GgmlType, loadModel, quantizeModel, readGguf } from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { writeRandomLlamaModel, type LlamaShape } from '../../lib/tools/random-model.js';
import { benchTokens } from '../../lib/tools/bench.js';
import { llamaMixTensorType, mixModelInfo, type LlamaMix } from '../../lib/backends/weight-types.js';
import { GgufMetadata, GgufValueType } from '../../lib/gguf/index.js';
import { argmax, defaultModelPath, logitsReference, runnableVariants, tempDir } from '../helpers/fixtures.js';

const SHAPE: LlamaShape = {
  embeddingLength: 512,
  blockCount: 2,
  headCount: 8,
  headCountKv: 4,
  feedForwardLength: 1536,
  vocabSize: 1024,
  contextLength: 256,
};
const TOKENS = benchTokens(24, SHAPE.vocabSize, 1, 7);

/**
 * Tolerance on the relative RMS error of all logits against the F16 model's (sqrt(sum (q - f16)^2 / sum f16^2)).
 * Estimate: G * sqrt(e_w^2 + e_a^2), where
 * - e_w is the RMS rounding error of a stored weight relative to the weights' RMS, for this model's uniform weights:
 *   what the reference quantizers give on uniform rows (native/tests/kernel-tests.cpp, "quality"): Q4_1 0.061,
 *   Q5_0 0.031, Q5_1 0.029, Q4_K 0.054, Q5_K 0.028, Q6_K 0.013 (Q8_0: 1/254 = 0.0039, the uniform-rounding value); the
 *   mixes use their base type's (their Q6_K tensors only lower the error);
 * - e_a is the rounding of the activations to 8 bits: 0.0057 for Q8_0/Q8_1 blocks of 32 (as in quantize.test.ts),
 *   0.007 for Q8_K super-blocks of 256 (a larger block max relative to the values' RMS);
 * - G = 3.4 is how much this random 2-layer model amplifies a relative weight error into its logits, measured with its
 *   Q8_0 file (relative RMS 0.0234 against an estimate of 0.0069 for G = 1); every type here lands within 1.2x of its
 *   estimate with that G.
 * The test allows twice the estimate: a wrong scale, a swapped nibble or a misplaced 5th/6th bit gives errors of
 * order 1, while rounding noise passes. The variants differ from each other by up to ~1e-2 here (an activation that
 * rounds the other way after a 1e-7 difference in summation order, amplified by the model), far inside the bound.
 * Argmax: the random model's top logits are often close together, so rows agree with the F16 model's argmax less often
 * than on a trained model (measured: 4-bit types 12..15 of 24 rows, 5-bit 17..21, Q6_K 22); required: 40%, 60%, 80%.
 */
const G = 3.4;
const E_A = { q8: 0.0057, q8k: 0.007 };
const CASES: { type: LlamaMix; fileType: number; base: number; ew: number; ea: number; argmax: number }[] = [
  { type: 'q4_1', fileType: 3, base: GgmlType.Q4_1, ew: 0.061, ea: E_A.q8, argmax: 0.4 },
  { type: 'q5_0', fileType: 8, base: GgmlType.Q5_0, ew: 0.031, ea: E_A.q8, argmax: 0.6 },
  { type: 'q5_1', fileType: 9, base: GgmlType.Q5_1, ew: 0.029, ea: E_A.q8, argmax: 0.6 },
  { type: 'q4_k', fileType: 14, base: GgmlType.Q4_K, ew: 0.054, ea: E_A.q8k, argmax: 0.4 },
  { type: 'q5_k', fileType: 16, base: GgmlType.Q5_K, ew: 0.028, ea: E_A.q8k, argmax: 0.6 },
  { type: 'q6_k', fileType: 18, base: GgmlType.Q6_K, ew: 0.013, ea: E_A.q8k, argmax: 0.8 },
  { type: 'q4_k_m', fileType: 15, base: GgmlType.Q4_K, ew: 0.054, ea: E_A.q8k, argmax: 0.4 },
  { type: 'q5_k_m', fileType: 17, base: GgmlType.Q5_K, ew: 0.028, ea: E_A.q8k, argmax: 0.6 },
];

function relativeRms(a: Float32Array, b: Float32Array): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    e += (a[i] - b[i]) ** 2;
    s += b[i] ** 2;
  }
  return Math.sqrt(e / s);
}

/** The types llama.cpp's rules give the 2-layer model: use_more_bits(i, 2) selects layer 1 only; Q4_K_S's "first 4
 * attn_v" covers both layers and its "first eighth of ffn_down" none. */
function expectedTypes(type: LlamaMix, base: number): Map<string, number> {
  const m = new Map<string, number>();
  m.set('token_embd.weight', base);
  m.set('output.weight', GgmlType.Q6_K);
  for (let l = 0; l < 2; l++) {
    for (const t of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down']) m.set(`blk.${l}.${t}.weight`, base);
    m.set(`blk.${l}.attn_norm.weight`, GgmlType.F32);
    m.set(`blk.${l}.ffn_norm.weight`, GgmlType.F32);
  }
  m.set('output_norm.weight', GgmlType.F32);
  if (type === 'q4_k_m' || type === 'q5_k_m') m.set('blk.1.attn_v.weight', GgmlType.Q6_K).set('blk.1.ffn_down.weight', GgmlType.Q6_K);
  if (type === 'q4_k') m.set('blk.0.attn_v.weight', GgmlType.Q5_K).set('blk.1.attn_v.weight', GgmlType.Q5_K);
  return m;
}

// The F16 model and its logits (ref variant), made once for the tests of this file.
const sharedDir = mkdtempSync(join(tmpdir(), 'aglm-kquants-'));
after(() => rmSync(sharedDir, { recursive: true, force: true }));
let f16: Promise<{ path: string; logits: Float32Array }> | undefined;
function f16Model(): Promise<{ path: string; logits: Float32Array }> {
  f16 ??= (async () => {
    const path = join(sharedDir, 'random-f16.gguf');
    await writeRandomLlamaModel(path, SHAPE, { type: GgmlType.F16, seed: 3 });
    await using model = await loadModel(path, { cpuVariant: 'ref' });
    await using ctx = model.createContext({ contextSize: 64 });
    return { path, logits: await ctx.evaluate(TOKENS, { logits: 'all' }) };
  })();
  return f16;
}

for (const c of CASES) {
  test(`quantize to ${c.type}: llama.cpp file type and tensor types, loads, generates, logits within tolerance on every CPU variant`, async (t) => {
    const { path: src, logits: ref } = await f16Model();
    const out = join(tempDir(t), `random-${c.type}.gguf`);
    if (c.type === 'q4_k_m') {
      const io = { out: () => {}, err: (s: string) => assert.fail(s) };
      assert.equal(await main(['quantize', src, out, '--type', 'q4_k_m'], io), 0);
    } else {
      await quantizeModel(src, out, c.type);
    }
    const file = await readGguf(out);
    assert.equal(file.metadata.getNumber('general.file_type'), c.fileType, 'llama.cpp file type');
    assert.equal(file.metadata.getNumber('general.quantization_version'), 2);
    const want = expectedTypes(c.type, c.base);
    for (const tensor of file.tensors) assert.equal(tensor.type, want.get(tensor.name), `type of ${tensor.name}`);

    const bound = 2 * G * Math.hypot(c.ew, c.ea);
    const nVocab = SHAPE.vocabSize;
    for (const variant of runnableVariants()) {
      await using model = await loadModel(out, { cpuVariant: variant });
      await using ctx = model.createContext({ contextSize: 64 });
      const all = await ctx.evaluate(TOKENS, { logits: 'all' });
      const rel = relativeRms(all, ref);
      let agree = 0;
      for (let i = 0; i < TOKENS.length; i++) {
        if (argmax(all, i * nVocab, (i + 1) * nVocab) === argmax(ref, i * nVocab, (i + 1) * nVocab)) agree++;
      }
      t.diagnostic(`${c.type}/${variant}: relative RMS ${rel.toExponential(2)} (estimate ${(bound / 2).toExponential(2)}, bound ${bound.toExponential(2)}), argmax ${agree}/${TOKENS.length}`);
      assert.ok(rel < bound, `relative RMS error ${rel} >= ${bound}`);
      assert.ok(agree >= c.argmax * TOKENS.length, `argmax agreement ${agree}/${TOKENS.length}`);
      const r = await model.complete('abc', { maxTokens: 8, temperature: 0 });
      assert.equal(r.tokens.length, 8);
    }
  });
}

/** A llama tensor list of `layers` layers (names and shapes only). */
function llamaTensors(layers: number, d: number, ff: number, kv: number): { name: string; dims: number[] }[] {
  const t = [
    { name: 'token_embd.weight', dims: [d, 32000] },
    { name: 'output_norm.weight', dims: [d] },
    { name: 'output.weight', dims: [d, 32000] },
  ];
  for (let l = 0; l < layers; l++) {
    t.push(
      { name: `blk.${l}.attn_norm.weight`, dims: [d] },
      { name: `blk.${l}.attn_q.weight`, dims: [d, d] },
      { name: `blk.${l}.attn_k.weight`, dims: [d, kv] },
      { name: `blk.${l}.attn_v.weight`, dims: [d, kv] },
      { name: `blk.${l}.attn_output.weight`, dims: [d, d] },
      { name: `blk.${l}.ffn_norm.weight`, dims: [d] },
      { name: `blk.${l}.ffn_gate.weight`, dims: [d, ff] },
      { name: `blk.${l}.ffn_up.weight`, dims: [d, ff] },
      { name: `blk.${l}.ffn_down.weight`, dims: [ff, d] },
    );
  }
  return t;
}

function llamaMetadata(layers: number, heads: number, headsKv: number): GgufMetadata {
  const u32 = (key: string, value: number) => ({ key, type: GgufValueType.UINT32, value });
  return new GgufMetadata([
    { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
    u32('llama.block_count', layers),
    u32('llama.attention.head_count', heads),
    u32('llama.attention.head_count_kv', headsKv),
  ]);
}

test("llama.cpp's per-tensor rules on a 32-layer llama (7B shape)", () => {
  const tensors = llamaTensors(32, 4096, 11008, 4096);
  const info = mixModelInfo(llamaMetadata(32, 32, 32), tensors);
  const layersWith = (mix: LlamaMix, part: string, type: number) =>
    tensors.filter((t) => t.name.includes(part) && llamaMixTensorType(t, mix, info).type === type).map((t) => Number(t.name.split('.')[1]));
  // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2
  const moreBits = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
  for (const mix of ['q4_k_m', 'q5_k_m'] as const) {
    assert.deepEqual(layersWith(mix, 'attn_v', GgmlType.Q6_K), moreBits, `${mix} attn_v`);
    assert.deepEqual(layersWith(mix, 'ffn_down', GgmlType.Q6_K), moreBits, `${mix} ffn_down`);
    const base = mix === 'q4_k_m' ? GgmlType.Q4_K : GgmlType.Q5_K;
    assert.equal(layersWith(mix, 'attn_q', base).length, 32);
    assert.equal(llamaMixTensorType(tensors[2], mix, info).type, GgmlType.Q6_K, 'output');
    assert.equal(llamaMixTensorType(tensors[0], mix, info).type, base, 'token_embd keeps the base type');
  }
  assert.deepEqual(layersWith('q4_k', 'attn_v', GgmlType.Q5_K), [0, 1, 2, 3], 'Q4_K_S attn_v');
  assert.deepEqual(layersWith('q4_k', 'ffn_down', GgmlType.Q5_K), [0, 1, 2, 3], 'Q4_K_S ffn_down (first eighth)');
  assert.equal(layersWith('q5_k', 'attn_v', GgmlType.Q5_K).length, 32, 'Q5_K_S changes nothing but the output');
  assert.equal(layersWith('q6_k', 'ffn_down', GgmlType.Q6_K).length, 32);
  assert.equal(llamaMixTensorType(tensors[1], 'q4_k_m', info).type, GgmlType.F32, 'norms stay F32');

  // No output tensor: the token embedding is the output and gets Q6_K.
  const tied = tensors.filter((t) => t.name !== 'output.weight');
  assert.equal(llamaMixTensorType(tied[0], 'q4_k_m', mixModelInfo(llamaMetadata(32, 32, 32), tied)).type, GgmlType.Q6_K);
  // A 70B llama (80 layers, grouped-query attention): Q4_K attn_v becomes Q5_K.
  const big = llamaTensors(80, 8192, 28672, 1024);
  const bigInfo = mixModelInfo(llamaMetadata(80, 64, 8), big);
  const v40 = big.find((t) => t.name === 'blk.40.attn_v.weight')!;
  assert.equal(llamaMixTensorType(v40, 'q4_k', bigInfo).type, GgmlType.Q5_K);
  assert.equal(llamaMixTensorType(v40, 'q4_k_m', bigInfo).type, GgmlType.Q5_K); // 40: not a use_more_bits layer
  // Rows that the 256-blocks do not divide fall back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and F16 when the
  // 32-block does not divide them either; the output gets Q8_0.
  const narrow = { name: 'blk.0.attn_q.weight', dims: [288, 288] };
  assert.equal(llamaMixTensorType(narrow, 'q4_k_m', info).type, GgmlType.Q5_0);
  assert.equal(llamaMixTensorType(narrow, 'q5_k_m', info).type, GgmlType.Q5_1);
  assert.equal(llamaMixTensorType(narrow, 'q6_k', info).type, GgmlType.Q8_0);
  assert.equal(llamaMixTensorType({ name: 'blk.0.ffn_down.weight', dims: [172, 64] }, 'q4_k_m', info).type, GgmlType.F16);
  assert.equal(llamaMixTensorType({ name: 'output.weight', dims: [288, 32000] }, 'q4_k_m', info).type, GgmlType.Q8_0);
  assert.equal(llamaMixTensorType({ name: 'output.weight', dims: [288, 32000] }, 'q4_1', info).type, GgmlType.Q8_0);
  assert.equal(llamaMixTensorType({ name: 'output.weight', dims: [4096, 32000] }, 'q5_0', info).type, GgmlType.Q6_K);
});

/**
 * stories260K (a trained model; rows of 64 and 172 values) as q4_k_m: no matrix fills 256-blocks, so llama.cpp's
 * fallbacks decide: Q4_K -> Q5_0 (64 columns), ffn_down (172 columns) F16, the output Q8_0. Its logits against the
 * F32 reference: Q5_0 rounds to steps of amax/16, a uniform error of step/sqrt(12) relative to the block's RMS of about
 * 0.031, with the Q8_0 activations about 0.032; quantize.test.ts measured this model's Q4_0 at 1.2x its estimate, so
 * about 0.038 is expected; the bound is twice that.
 */
test('quantize stories260K to q4_k_m: fallback types, logits within tolerance on every CPU variant', async (t) => {
  const ref = logitsReference();
  const out = join(tempDir(t), 'stories260K-q4_k_m.gguf');
  const report = await quantizeModel(defaultModelPath, out, 'q4_k_m');
  const to = (name: string) => report.tensors.find((x) => x.name === name)!.to;
  assert.equal(to('blk.0.attn_q.weight'), 'Q5_0');
  assert.equal(to('blk.0.ffn_down.weight'), 'F16');
  assert.equal(to('output.weight'), 'Q8_0');
  assert.match(report.tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!.reason!, /172/);
  const bound = 2 * 0.038;
  for (const variant of runnableVariants()) {
    await using model = await loadModel(out, { cpuVariant: variant });
    await using ctx = model.createContext({ contextSize: 128 });
    const all = await ctx.evaluate(ref.tokens, { logits: 'all' });
    const rel = relativeRms(all, ref.logits);
    t.diagnostic(`stories260K q4_k_m/${variant}: relative RMS ${rel.toExponential(2)} (bound ${bound.toExponential(2)})`);
    assert.ok(rel < bound, `relative RMS error ${rel} >= ${bound}`);
  }
});

test('quantize rejects a K-quant llama.cpp has but we do not write (q3_k) with a typed error', async () => {
  let err = '';
  const code = await main(['quantize', defaultModelPath, '/tmp/never.gguf', '--type', 'q3_k'], { out: () => {}, err: (s) => (err += s) });
  assert.equal(code, 1);
  assert.match(err, /INVALID_ARGUMENT/);
  assert.match(err, /q4_k_m/);
});
