// The chatglm architecture reproduces THUDM's PyTorch ChatGLM2/3 and GLM-4 (test/fixtures/glm/, from chatglm.cpp):
// the reference weights become a `chatglm` GGUF written by our writer in llama.cpp's layout (fused attn_qkv + bias,
// fused ffn_up with the gate first, rotary on half of each head), loaded through loadModel -> IR -> native like any
// file; a prefill of 3 tokens and two cached decode steps give the hidden states after the final norm within 1e-5 of
// the reference, on every CPU variant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GgmlType, GgufValueType, loadModel, writeGguf, type GgufEntry } from '../../lib/index.js';
import { maxAbsDiff, repoRoot, runnableVariants, tempDir } from '../helpers/fixtures.js';

const TOL = 1e-5;
const D = 32, HEADS = 8, KV_HEADS = 2, HEAD_DIM = 4, FF = 48, VOCAB = 5;
const QKV = D + 2 * KV_HEADS * HEAD_DIM;

interface GlmReference {
  weights: Record<string, { dims: number[]; data: Float32Array }>;
  steps: { tokens: number[]; expected: Float32Array }[];
}

/** Parses a glm*_model.data file (layout in test/fixtures/glm/README.md). PyTorch [out, in] = GGUF dims [in, out]. */
function readReference(file: string): GlmReference {
  const raw = readFileSync(join(repoRoot, 'test', 'fixtures', 'glm', file));
  const words = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let at = 0;
  const floats = (n: number) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = words.getFloat32((at + i) * 4, true);
    at += n;
    return out;
  };
  const ints = (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(words.getInt32((at + i) * 4, true));
    at += n;
    return out;
  };
  const weights: GlmReference['weights'] = {};
  const take = (name: string, dims: number[]) => (weights[name] = { dims, data: floats(dims.reduce((a, b) => a * b, 1)) });
  take('token_embd.weight', [D, VOCAB]);
  take('blk.0.attn_norm.weight', [D]);
  take('blk.0.attn_qkv.weight', [D, QKV]);
  take('blk.0.attn_qkv.bias', [QKV]);
  take('blk.0.attn_output.weight', [D, D]);
  take('blk.0.ffn_norm.weight', [D]);
  take('blk.0.ffn_up.weight', [D, 2 * FF]);
  take('blk.0.ffn_down.weight', [FF, D]);
  take('output_norm.weight', [D]);
  const steps = [3, 1, 1].map((n) => {
    const tokens = ints(n);
    return { tokens, expected: floats(n * D) };
  });
  assert.equal(at * 4, raw.byteLength, `${file}: every word read`);
  return { weights, steps };
}

/** The reference as llama.cpp's converter would write ChatGLM: `chatglm.*` keys and a 5-token SentencePiece vocab. */
async function writeChatglmGguf(path: string, ref: GlmReference, eps: number, freqBase: number): Promise<void> {
  const u32 = (key: string, value: number): GgufEntry => ({ key, type: GgufValueType.UINT32, value });
  const f32 = (key: string, value: number): GgufEntry => ({ key, type: GgufValueType.FLOAT32, value });
  const metadata: GgufEntry[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: 'chatglm' },
    { key: 'general.name', type: GgufValueType.STRING, value: 'chatglm.cpp reference' },
    u32('chatglm.context_length', 16),
    u32('chatglm.embedding_length', D),
    u32('chatglm.feed_forward_length', FF),
    u32('chatglm.block_count', 1),
    u32('chatglm.attention.head_count', HEADS),
    u32('chatglm.attention.head_count_kv', KV_HEADS),
    u32('chatglm.rope.dimension_count', HEAD_DIM / 2),
    f32('chatglm.rope.freq_base', freqBase),
    f32('chatglm.attention.layer_norm_rms_epsilon', eps),
    u32('general.file_type', 0),
    { key: 'tokenizer.ggml.model', type: GgufValueType.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.STRING, items: ['<unk>', '<s>', '</s>', '▁a', '▁b'] } },
    { key: 'tokenizer.ggml.scores', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.FLOAT32, items: new Float32Array([0, 0, 0, -1, -2]) } },
    { key: 'tokenizer.ggml.token_type', type: GgufValueType.ARRAY, value: { itemType: GgufValueType.INT32, items: Int32Array.from([2, 3, 3, 1, 1]) } },
    u32('tokenizer.ggml.bos_token_id', 1),
    u32('tokenizer.ggml.eos_token_id', 2),
    u32('tokenizer.ggml.unknown_token_id', 0),
  ];
  const tensors = Object.entries(ref.weights).map(([name, w]) => ({
    name,
    type: GgmlType.F32,
    dims: w.dims,
    data: new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength),
  }));
  await writeGguf(path, { version: 3, metadata, tensors });
}

const MODELS = [
  { name: 'glm2', file: 'glm2_model.data', eps: 1e-5, freqBase: 10000 },
  { name: 'glm4', file: 'glm4_model.data', eps: 1.5625e-7, freqBase: 10000 * 500 },
];

for (const m of MODELS) {
  test(`${m.name} reference: prefill of 3 tokens and two cached decode steps, hidden states within ${TOL} (every variant)`, async (t) => {
    const ref = readReference(m.file);
    const path = join(tempDir(t, 'aglm-glm-'), `${m.name}.gguf`);
    await writeChatglmGguf(path, ref, m.eps, m.freqBase);
    for (const variant of runnableVariants()) {
      await using model = await loadModel(path, { cpuVariant: variant });
      assert.equal(model.architecture, 'chatglm');
      assert.equal(model.hiddenSize, D);
      await using ctx = model.createContext({ contextSize: 8 });
      const diffs: number[] = [];
      for (const [i, step] of ref.steps.entries()) {
        const hidden = await ctx.evaluate(step.tokens, { hidden: 'all' });
        diffs.push(maxAbsDiff(hidden, step.expected));
        assert.ok(diffs[i] <= TOL, `${variant} step ${i + 1}: max |diff| ${diffs[i]}`);
      }
      assert.equal(ctx.position, 5);
      t.diagnostic(`${m.name} ${variant}: max |diff| per step ${diffs.map((d) => d.toExponential(2)).join(', ')}`);
    }
  });
}

test('the reference tells the epsilons apart at this tolerance (the test can fail)', async (t) => {
  // glm2 and glm4 hold the same weights and inputs; only eps differs. Running glm2's file with glm4's eps must miss
  // glm2's expected states by more than TOL, else the comparison above could not catch a wrong eps.
  const glm2 = readReference('glm2_model.data');
  const path = join(tempDir(t, 'aglm-glm-'), 'wrong-eps.gguf');
  await writeChatglmGguf(path, glm2, 1.5625e-7, 10000);
  await using model = await loadModel(path);
  await using ctx = model.createContext({ contextSize: 8 });
  let worst = 0;
  for (const step of glm2.steps) worst = Math.max(worst, maxAbsDiff(await ctx.evaluate(step.tokens, { hidden: 'all' }), step.expected));
  t.diagnostic(`glm2 expected vs glm4 eps: max |diff| ${worst.toExponential(2)}`);
  assert.ok(worst > 2 * TOL, `a wrong eps moves the states by only ${worst}`);
});

test('token by token equals the batched prefill (reference glm4)', async (t) => {
  const ref = readReference('glm4_model.data');
  const path = join(tempDir(t, 'aglm-glm-'), 'glm4.gguf');
  await writeChatglmGguf(path, ref, 1.5625e-7, 10000 * 500);
  await using model = await loadModel(path);
  await using ctx = model.createContext({ contextSize: 8, batchSize: 1 });
  const rows = await ctx.evaluate(ref.steps[0].tokens, { hidden: 'all' });
  assert.ok(maxAbsDiff(rows, ref.steps[0].expected) <= TOL);
});
