// Hostile model files through the whole loadModel path (GGUF parse, architecture checks, native mapping and
// binding): every broken file is a typed AglmError (no crash, no hang, no unhandled rejection).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AglmError, GgmlType, GgufValueType, loadModel, readGguf, writeGguf, type GgufEntry } from '../../lib/index.js';
import { defaultModelPath, tempDir } from '../helpers/fixtures.js';

const original = readFileSync(defaultModelPath);
const HEADER_BYTES = 14152;

/** stories260K rewritten with `edit` applied to its metadata and tensor list. */
async function variant(
  dir: string,
  name: string,
  edit: (m: GgufEntry[], t: { name: string; type: number; dims: number[]; data: Uint8Array }[]) => void,
): Promise<string> {
  const src = await readGguf(defaultModelPath);
  const metadata = src.metadata.entries().map((e) => ({ ...e }));
  const tensors = src.tensors.map((t) => ({
    name: t.name,
    type: t.type,
    dims: t.dims.slice(),
    data: new Uint8Array(original.buffer, original.byteOffset + t.offset, t.byteLength),
  }));
  edit(metadata, tensors);
  const path = join(dir, `${name}.gguf`);
  await writeGguf(path, { version: 3, metadata, tensors });
  return path;
}

async function expectCode(path: string, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(loadModel(path), (e: unknown) => {
    assert.ok(e instanceof AglmError, `not an AglmError: ${e}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

test('architecture-level errors name what is wrong', async (t) => {
  const dir = tempDir(t);
  await expectCode(
    await variant(dir, 'no-embd-len', (m) => m.splice(m.findIndex((e) => e.key === 'llama.embedding_length'), 1)),
    'GGUF_MISSING_KEY',
    /llama\.embedding_length/,
  );
  await expectCode(
    await variant(dir, 'wrong-key-type', (m) => {
      m.find((e) => e.key === 'llama.block_count')!.type = GgufValueType.STRING;
      m.find((e) => e.key === 'llama.block_count')!.value = 'five';
    }),
    'GGUF_MISSING_KEY',
    /llama\.block_count/,
  );
  await expectCode(
    await variant(dir, 'no-ffn-up', (_, ts) => ts.splice(ts.findIndex((x) => x.name === 'blk.3.ffn_up.weight'), 1)),
    'GGUF_MISSING_TENSOR',
    /blk\.3\.ffn_up\.weight/,
  );
  await expectCode(
    await variant(dir, 'short-q', (_, ts) => {
      const q = ts.find((x) => x.name === 'blk.1.attn_q.weight')!;
      q.dims = [64, 32];
      q.data = q.data.subarray(0, 64 * 32 * 4);
    }),
    'GGUF_SHAPE_MISMATCH',
    /blk\.1\.attn_q\.weight/,
  );
  await expectCode(
    await variant(dir, 'heads', (m) => {
      m.find((e) => e.key === 'llama.attention.head_count_kv')!.value = 3;
    }),
    'GGUF_SHAPE_MISMATCH',
  );
  await expectCode(
    await variant(dir, 'arch', (m) => {
      m.find((e) => e.key === 'general.architecture')!.value = 'mamba9';
    }),
    'UNSUPPORTED_ARCH',
    /mamba9/,
  );
  await expectCode(
    await variant(dir, 'tokenizer', (m) => {
      m.find((e) => e.key === 'tokenizer.ggml.model')!.value = 'rwkv';
    }),
    'UNSUPPORTED_TOKENIZER',
  );
});

test('a tensor type the kernels lack is UNSUPPORTED_TENSOR_TYPE', async (t) => {
  const dir = tempDir(t);
  // Re-type one matrix as IQ4_NL (same dims; 32-value blocks of 18 bytes): a valid file the CPU kernels cannot run yet.
  const path = await variant(dir, 'iq4nl', (_, ts) => {
    const w = ts.find((x) => x.name === 'blk.2.attn_output.weight')!;
    w.type = GgmlType.IQ4_NL;
    w.data = new Uint8Array((64 / 32) * 18 * 64);
  });
  await expectCode(path, 'UNSUPPORTED_TENSOR_TYPE', /blk\.2\.attn_output\.weight/);
});

/** loadModel on bytes; returns the error code, or 'loaded' (then it also generates, to prove the weights are usable). */
async function tryLoad(dir: string, i: number, bytes: Uint8Array): Promise<string> {
  const path = join(dir, `case-${i}.gguf`);
  writeFileSync(path, bytes);
  try {
    const model = await loadModel(path);
    try {
      await model.complete('Once', { maxTokens: 2, temperature: 0 });
    } finally {
      model.dispose();
    }
    return 'loaded';
  } catch (e) {
    if (!(e instanceof AglmError)) throw new Error(`case ${i}: not an AglmError: ${e instanceof Error ? e.stack : e}`);
    return e.code;
  }
}

function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

test('stories260K truncated at 100 random offsets: every one a typed error', async (t) => {
  const dir = tempDir(t);
  const rand = rng(260);
  const codes = new Map<string, number>();
  const offsets = [0, 3, 4, 8, HEADER_BYTES - 1, HEADER_BYTES, original.length - 1];
  while (offsets.length < 100) offsets.push(Math.floor(rand() * original.length));
  for (const [i, at] of offsets.entries()) {
    const code = await tryLoad(dir, i, original.subarray(0, at));
    assert.notEqual(code, 'loaded', `truncated at ${at} still loaded`);
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  t.diagnostic(JSON.stringify(Object.fromEntries(codes)));
});

test('stories260K with 1,000 random byte flips in its header: loads or gives a typed error, never crashes', async (t) => {
  const dir = tempDir(t);
  const rand = rng(1000);
  const codes = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const bytes = Uint8Array.from(original);
    const flips = i % 10 === 9 ? 4 : 1;
    for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * HEADER_BYTES)] ^= 1 + Math.floor(rand() * 255);
    const code = await tryLoad(dir, i % 16, bytes);
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  t.diagnostic(JSON.stringify(Object.fromEntries(codes)));
  assert.ok((codes.get('loaded') ?? 0) < 1000, 'some flips must break the file');
});
