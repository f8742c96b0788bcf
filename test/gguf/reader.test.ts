// Tests for the GGUF reader: the facts of the bundled stories260K model, prefix parsing, file errors, speed.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isAglmError } from '../../lib/errors.js';
import {
  GgmlType,
  GgufNeedMore,
  GgufValueType as T,
  parseGguf,
  readGguf,
  serializeGguf,
  writeGguf,
  type GgufFile,
  type GgufWriteSpec,
} from '../../lib/gguf/index.js';

const MODEL = 'models/stories260K.gguf';
const modelBytes = readFileSync(MODEL);
const tmp = mkdtempSync(join(tmpdir(), 'aglm-gguf-reader-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('reads the facts of stories260K.gguf', async () => {
  const f = await readGguf(MODEL);
  assert.equal(f.version, 3);
  assert.equal(f.fileSize, 1185376);
  assert.equal(f.metadata.size, 19);
  assert.equal(f.tensors.length, 48);
  assert.equal(f.metadata.getString('general.architecture'), 'llama');
  assert.equal(f.metadata.getNumber('llama.embedding_length'), 64);
  assert.equal(f.metadata.getNumber('llama.block_count'), 5);
  const tokens = f.metadata.getStringArray('tokenizer.ggml.tokens');
  assert.equal(tokens.length, 512);
  assert.deepEqual(tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
  const scores = f.metadata.getNumberArray('tokenizer.ggml.scores');
  assert.ok(scores instanceof Float32Array);
  assert.equal(scores.length, 512);
  const types = f.metadata.getArray('tokenizer.ggml.token_type');
  assert.equal(types.itemType, T.INT32);
  assert.ok(types.items instanceof Int32Array);
  assert.equal(types.items.length, 512);
});

test('numeric arrays hold the values in the file, whatever buffer the bytes come in', async () => {
  const f = await readGguf(MODEL);
  const types = f.metadata.getNumberArray('tokenizer.ggml.token_type');
  assert.deepEqual([...types.slice(0, 4)], [2, 3, 3, 6]); // UNKNOWN, CONTROL, CONTROL, BYTE
  assert.equal(types[259], 1); // NORMAL
  const scores = f.metadata.getNumberArray('tokenizer.ggml.scores');
  assert.equal(scores[260], -1);
  assert.equal(scores[511], -252);
  assert.equal(f.metadata.getStringArray('tokenizer.ggml.tokens')[259], '▁t');
  // A Buffer at offset 0, a Buffer view at an odd offset, and a plain Uint8Array all parse alike.
  const shifted = Buffer.concat([Buffer.alloc(3), modelBytes]).subarray(3);
  for (const bytes of [modelBytes, shifted, new Uint8Array(modelBytes)]) {
    const g = parseGguf(bytes);
    assert.deepEqual(g.metadata.entries(), f.metadata.entries());
    assert.deepEqual(g.tensors, f.tensors);
  }
});

test('places stories260K tensors at the right absolute offsets', async () => {
  const f = await readGguf(MODEL);
  assert.equal(f.alignment, 32);
  assert.equal(f.headerBytes, 14152);
  assert.equal(f.dataOffset, 14176);
  const embd = f.tensor('token_embd.weight');
  assert.deepEqual(embd, {
    name: 'token_embd.weight',
    type: GgmlType.F32,
    dims: [64, 512],
    nElements: 32768,
    byteLength: 131072,
    offset: 14176,
  });
  assert.equal(f.tensor('missing.weight'), undefined);
  let end = f.dataOffset;
  for (const t of f.tensors) {
    assert.equal(t.type, GgmlType.F32, t.name);
    assert.equal(t.offset, end, `${t.name} follows the previous tensor`);
    assert.equal(t.byteLength, t.nElements * 4);
    end = t.offset + t.byteLength;
  }
  assert.equal(end, f.fileSize);
});

test('the data of output_norm.weight at its offset is 64 finite floats', async () => {
  const f = await readGguf(MODEL);
  const t = f.tensor('output_norm.weight');
  assert.ok(t);
  assert.deepEqual(t.dims, [64]);
  const data = new Float32Array(modelBytes.buffer.slice(modelBytes.byteOffset + t.offset, modelBytes.byteOffset + t.offset + t.byteLength));
  assert.equal(data.length, 64);
  assert.ok(data.every((x) => Number.isFinite(x)));
  assert.ok(data.some((x) => x !== 0), 'not all zeros');
  // RMS-norm gains of a trained model sit around 1, not in the garbage range of misplaced bytes.
  assert.ok(data.every((x) => Math.abs(x) < 100), 'plausible norm weights');
});

test('parseGguf on a prefix asks for more, and the grown prefix parses the same', () => {
  const size = modelBytes.length;
  const full = parseGguf(modelBytes);
  let len = 100;
  let rounds = 0;
  let parsed: GgufFile | undefined;
  while (!parsed) {
    try {
      parsed = parseGguf(modelBytes.subarray(0, len), size);
    } catch (e) {
      assert.ok(e instanceof GgufNeedMore, String(e));
      assert.ok(e.needed > len && e.needed <= full.headerBytes, `needed ${e.needed}`);
      len = e.needed;
      rounds++;
    }
  }
  assert.ok(rounds > 1);
  assert.equal(len, full.headerBytes);
  assert.deepEqual(parsed.tensors, full.tensors);
  assert.deepEqual(parsed.metadata.entries(), full.metadata.entries());
  assert.equal(parsed.dataOffset, 14176);
});

test('parseGguf refuses a fileSize smaller than the bytes given', () => {
  assert.throws(() => parseGguf(modelBytes, 10), (e) => isAglmError(e, 'INVALID_ARGUMENT'));
});

function vocabSpec(n: number): GgufWriteSpec {
  const tokens = Array.from({ length: n }, (_, i) => `▁tok${i.toString(36)}${i % 13 === 0 ? 'é' : ''}`);
  return {
    metadata: [
      { key: 'general.architecture', type: T.STRING, value: 'llama' },
      { key: 'tokenizer.ggml.tokens', type: T.ARRAY, value: { itemType: T.STRING, items: tokens } },
      { key: 'tokenizer.ggml.scores', type: T.ARRAY, value: { itemType: T.FLOAT32, items: new Float32Array(n).fill(-1) } },
      { key: 'tokenizer.ggml.token_type', type: T.ARRAY, value: { itemType: T.INT32, items: new Int32Array(n).fill(1) } },
    ],
    tensors: [{ name: 'token_embd.weight', type: GgmlType.F32, dims: [8, 4], data: new Uint8Array(128) }],
  };
}

test('readGguf grows its prefix for a header larger than 1 MiB', async () => {
  const path = join(tmp, 'big-vocab.gguf');
  await writeGguf(path, vocabSpec(150_000));
  const f = await readGguf(path);
  assert.ok(f.headerBytes > 1 << 20, `header is ${f.headerBytes} bytes`);
  const tokens = f.metadata.getStringArray('tokenizer.ggml.tokens');
  assert.equal(tokens.length, 150_000);
  assert.equal(tokens[149_999], `▁tok${(149_999).toString(36)}`);
  assert.equal(tokens[13], '▁tokdé');
  assert.equal(f.tensor('token_embd.weight')?.offset, f.dataOffset);
});

test('a 150k-token vocabulary header parses in well under 200 ms', () => {
  const bytes = serializeGguf(vocabSpec(150_000));
  parseGguf(bytes); // warm up
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    parseGguf(bytes);
    best = Math.min(best, performance.now() - t0);
  }
  assert.ok(best < 200, `parse took ${best.toFixed(1)} ms`);
});

test('readGguf reports a missing file, a directory, and an aborted signal', async () => {
  await assert.rejects(readGguf(join(tmp, 'nope.gguf')), (e) => isAglmError(e, 'FILE_NOT_FOUND') && e.message.includes('nope.gguf'));
  await assert.rejects(readGguf(tmp), (e) => isAglmError(e, 'IO_ERROR'));
  await assert.rejects(readGguf(MODEL, { signal: AbortSignal.abort() }), (e) => isAglmError(e, 'ABORTED'));
  await assert.rejects(readGguf(''), (e) => isAglmError(e, 'INVALID_ARGUMENT'));
});
