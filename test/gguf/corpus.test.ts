// Hostile-input tests for the GGUF reader: one broken file per validation rule, then truncated and bit-flipped models.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AglmError, type ErrorCode } from '../../lib/errors.js';
import { GgmlType, GgufNeedMore, GgufValueType as T, parseGguf, readGguf, serializeGguf, type GgufEntry } from '../../lib/gguf/index.js';
import { enc, prng, rawGguf, rawHeader, rawKv, type RawKv, type RawSpec, type RawTensor } from './raw-gguf.js';

const tmp = mkdtempSync(join(tmpdir(), 'aglm-gguf-corpus-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = readFileSync('models/stories260K.gguf');
const HEADER_END = 14152;

// A small valid file: two KV pairs, tensors a (F32 [8], 32 bytes at 0) and b (F32 [8, 2], 64 bytes at 32).
const KV_ARCH = rawKv('general.architecture', T.STRING, enc.str('test'));
const KV_ARR = rawKv('tok', T.ARRAY, Buffer.concat([enc.u32(T.INT32), enc.u64(3), enc.i32(1), enc.i32(2), enc.i32(3)]));
const TA: RawTensor = { name: 'a', dims: [8], type: GgmlType.F32, offset: 0 };
const TB: RawTensor = { name: 'b', dims: [8, 2], type: GgmlType.F32, offset: 32 };

function file(over: Partial<RawSpec> = {}): Buffer {
  return rawGguf({ kvs: [KV_ARCH, KV_ARR], tensors: [TA, TB], dataBytes: 96, ...over });
}
const withKv = (...kvs: RawKv[]) => file({ kvs: [KV_ARCH, ...kvs] });
const withTensors = (...tensors: RawTensor[]) => file({ tensors });
const alignKv = (type: number, value: Buffer) => rawKv('general.alignment', type, value);

/** An array value `depth` levels deep around one UINT8. */
function nested(depth: number): Buffer {
  let v = Buffer.concat([enc.u32(T.UINT8), enc.u64(1), enc.u8(5)]);
  for (let d = 1; d < depth; d++) v = Buffer.concat([enc.u32(T.ARRAY), enc.u64(1), v]);
  return v;
}

const CASES: [string, Buffer, ErrorCode][] = [
  ['bad magic', file({ magic: Buffer.from('GGUX') }), 'GGUF_BAD_MAGIC'],
  ['legacy GGJT magic', file({ magic: Buffer.from('tjgg') }), 'GGUF_BAD_MAGIC'],
  ['a text file', Buffer.from('hello, this is not a model'), 'GGUF_BAD_MAGIC'],
  ['version 1', file({ version: 1 }), 'GGUF_UNSUPPORTED_VERSION'],
  ['version 0', file({ version: 0 }), 'GGUF_UNSUPPORTED_VERSION'],
  ['version 4', file({ version: 4 }), 'GGUF_UNSUPPORTED_VERSION'],
  ['byte-swapped v3', file({ version: 0x03000000 }), 'GGUF_UNSUPPORTED_VERSION'],
  ['byte-swapped v2', file({ version: 0x02000000 }), 'GGUF_UNSUPPORTED_VERSION'],
  ['empty file', Buffer.alloc(0), 'GGUF_TRUNCATED'],
  ['magic only', Buffer.from('GGUF'), 'GGUF_TRUNCATED'],
  ['ends inside the counts', file().subarray(0, 20), 'GGUF_TRUNCATED'],
  ['ends inside a KV pair', file().subarray(0, 40), 'GGUF_TRUNCATED'],
  ['ends inside the tensor infos', rawHeader({ kvs: [KV_ARCH], tensors: [TA, TB] }).subarray(0, -5), 'GGUF_TRUNCATED'],
  ['tensor count 2^60', file({ nTensors: 2n ** 60n }), 'GGUF_TRUNCATED'],
  ['KV count 2^60', file({ nKv: 2n ** 60n }), 'GGUF_TRUNCATED'],
  ['KV count 2^64-1', file({ nKv: 2n ** 64n - 1n }), 'GGUF_TRUNCATED'],
  ['KV count 1000', file({ nKv: 1000 }), 'GGUF_TRUNCATED'],
  ['array count 2^60', withKv(rawKv('x', T.ARRAY, Buffer.concat([enc.u32(T.INT32), enc.u64(2n ** 60n)]))), 'GGUF_TRUNCATED'],
  ['string array count 2^40', withKv(rawKv('x', T.ARRAY, Buffer.concat([enc.u32(T.STRING), enc.u64(2n ** 40n)]))), 'GGUF_TRUNCATED'],
  ['nested array count 2^62', withKv(rawKv('x', T.ARRAY, Buffer.concat([enc.u32(T.ARRAY), enc.u64(2n ** 62n)]))), 'GGUF_TRUNCATED'],
  ['string length 2^32', withKv(rawKv('x', T.STRING, enc.str('abc', 2 ** 32))), 'GGUF_TRUNCATED'],
  ['key length 2^63', file({ kvs: [{ ...KV_ARCH, keyLength: 2n ** 63n }] }), 'GGUF_TRUNCATED'],
  ['tensor name length 2^64-1', withTensors({ ...TA, nameLength: 2n ** 64n - 1n }), 'GGUF_TRUNCATED'],
  ['tensor data cut short', file({ dataBytes: 60 }), 'GGUF_TRUNCATED'],
  ['unknown value type 13', withKv(rawKv('x', 13, enc.u32(0))), 'GGUF_INVALID'],
  ['unknown value type 2^32-1', withKv(rawKv('x', 0xffffffff, enc.u32(0))), 'GGUF_INVALID'],
  ['unknown array item type', withKv(rawKv('x', T.ARRAY, Buffer.concat([enc.u32(13), enc.u64(1), enc.u32(0)]))), 'GGUF_INVALID'],
  ['arrays nested 9 deep', withKv(rawKv('x', T.ARRAY, nested(9))), 'GGUF_INVALID'],
  ['duplicate key', withKv(KV_ARCH), 'GGUF_INVALID'],
  ['empty key', withKv(rawKv('', T.UINT8, enc.u8(1))), 'GGUF_INVALID'],
  ['key of 65536 bytes', withKv(rawKv('k'.repeat(65536), T.UINT8, enc.u8(1))), 'GGUF_INVALID'],
  ['key not UTF-8', withKv(rawKv(Buffer.from([0x6b, 0xff, 0xfe]), T.UINT8, enc.u8(1))), 'GGUF_INVALID'],
  ['duplicate tensor name', withTensors(TA, { ...TB, name: 'a' }), 'GGUF_INVALID'],
  ['tensor name not UTF-8', withTensors({ ...TA, name: Buffer.from([0xc0, 0x80]) }, TB), 'GGUF_INVALID'],
  ['n_dims 0', withTensors({ ...TA, dims: [], nDims: 0 }, TB), 'GGUF_INVALID'],
  ['n_dims 5', withTensors({ ...TA, dims: [8, 1, 1, 1, 1] }, TB), 'GGUF_INVALID'],
  ['dimension 0', withTensors(TA, { ...TB, dims: [8, 0] }), 'GGUF_INVALID'],
  ['dimension -1', withTensors(TA, { ...TB, dims: [8, -1] }), 'GGUF_INVALID'],
  ['dimension 2^63-1', withTensors(TA, { ...TB, dims: [8, 2n ** 63n - 1n] }), 'GGUF_INVALID'],
  ['2^54 elements', withTensors(TA, { ...TB, dims: [2 ** 27, 2 ** 27] }), 'GGUF_INVALID'],
  ['alignment of type UINT64', withKv(alignKv(T.UINT64, enc.u64(32))), 'GGUF_INVALID'],
  ['alignment of type STRING', withKv(alignKv(T.STRING, enc.str('32'))), 'GGUF_INVALID'],
  ['alignment 48', withKv(alignKv(T.UINT32, enc.u32(48))), 'GGUF_INVALID'],
  ['alignment 0', withKv(alignKv(T.UINT32, enc.u32(0))), 'GGUF_INVALID'],
  ['offset not a multiple of 32', withTensors(TA, { ...TB, offset: 48 }), 'GGUF_INVALID'],
  ['offset not a multiple of 64', file({ kvs: [alignKv(T.UINT32, enc.u32(64))], alignment: 64, dataBytes: 128 }), 'GGUF_INVALID'],
  ['Q8_0 ne[0] of 16', withTensors(TA, { ...TB, type: GgmlType.Q8_0, dims: [16, 1] }), 'GGUF_INVALID'],
  ['removed tensor type 4', withTensors(TA, { ...TB, type: 4 }), 'GGUF_UNKNOWN_TENSOR_TYPE'],
  ['removed tensor type 31', withTensors(TA, { ...TB, type: 31 }), 'GGUF_UNKNOWN_TENSOR_TYPE'],
  ['unknown tensor type 40', withTensors(TA, { ...TB, type: 40 }), 'GGUF_UNKNOWN_TENSOR_TYPE'],
  ['unknown tensor type 2^32-1', withTensors(TA, { ...TB, type: 0xffffffff }), 'GGUF_UNKNOWN_TENSOR_TYPE'],
  ['data far past the end', withTensors(TA, { ...TB, offset: 2n ** 40n }), 'GGUF_TENSOR_OUT_OF_BOUNDS'],
  ['data starting exactly at the end', withTensors({ ...TA, offset: 96 }, TB), 'GGUF_TENSOR_OUT_OF_BOUNDS'],
  ['offset + size overflowing u64', withTensors(TA, { ...TB, offset: 2n ** 64n - 32n }), 'GGUF_TENSOR_OUT_OF_BOUNDS'],
  ['two tensors at the same offset', withTensors(TA, { ...TB, offset: 0 }), 'GGUF_TENSOR_OVERLAP'],
  ['a tensor starting inside another', withTensors({ ...TA, dims: [16] }, TB), 'GGUF_TENSOR_OVERLAP'],
];

function codeOf(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (e) {
    return e instanceof AglmError ? e.code : `not an AglmError: ${e}`;
  }
}

async function asyncCodeOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (e) {
    return e instanceof AglmError ? e.code : `not an AglmError: ${e}`;
  }
}

test('the corpus base files are valid', () => {
  const f = parseGguf(file());
  assert.deepEqual(f.tensors.map((t) => [t.name, t.offset - f.dataOffset, t.byteLength]), [['a', 0, 32], ['b', 32, 64]]);
  assert.equal(parseGguf(file({ version: 2 })).version, 2);
  assert.equal(parseGguf(withKv(rawKv('x', T.ARRAY, nested(8)))).metadata.has('x'), true, 'arrays 8 deep are allowed');
  assert.equal(parseGguf(withKv(rawKv('k'.repeat(65535), T.UINT8, enc.u8(1)))).metadata.size, 2, 'a 65535-byte key is allowed');
  assert.equal(parseGguf(withKv(alignKv(T.UINT32, enc.u32(16)))).alignment, 16);
  assert.equal(parseGguf(withTensors(TA, { ...TB, type: GgmlType.Q8_0, dims: [32, 1] })).tensors[1].byteLength, 34);
});

test('each broken file fails with its exact code, from memory and from disk', async () => {
  for (const [i, [what, bytes, code]] of CASES.entries()) {
    assert.equal(codeOf(() => parseGguf(bytes)), code, what);
    const path = join(tmp, `case-${i}.gguf`);
    writeFileSync(path, bytes);
    assert.equal(await asyncCodeOf(() => readGguf(path)), code, `${what} (readGguf)`);
  }
});

test('messages say what and where', () => {
  const msg = (bytes: Buffer) => {
    try {
      parseGguf(bytes);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  const long = withKv(rawKv('x', T.STRING, enc.str('abc', 2 ** 32)));
  assert.match(msg(long), new RegExp(`string value length 4294967296 at byte \\d+ runs past the end of the file \\(${long.length} bytes\\)`));
  assert.match(msg(withKv(KV_ARCH)), /"general\.architecture" at byte \d+ appears twice/);
  assert.match(msg(file({ nTensors: 2n ** 60n })), /tensor count 1152921504606846976 at byte 8 cannot fit/);
  assert.match(msg(file({ nKv: 2n ** 64n - 1n })), /key\/value count 18446744073709551615 at byte 16 cannot fit/);
  assert.match(msg(withTensors(TA, { ...TB, type: 40 })), /tensor "b" has unknown GGML type id 40/);
  assert.match(msg(file({ dataBytes: 60 })), /tensor "b" .* the file is truncated/);
});

test('counts that would fit a huge file never allocate: they ask for more bytes or are refused', () => {
  const HUGE = 2 ** 45; // parse the small file as the prefix of a 32 TiB one
  const arrayOf = (itemType: number, count: bigint) => withKv(rawKv('x', T.ARRAY, Buffer.concat([enc.u32(itemType), enc.u64(count)])));
  const cases: [string, Buffer][] = [
    ['2^33 strings', arrayOf(T.STRING, 2n ** 33n)],
    ['2^33 nested arrays', arrayOf(T.ARRAY, 2n ** 33n)],
    ['2^40 INT32 items', arrayOf(T.INT32, 2n ** 40n)],
    ['2^38 tensors', file({ nTensors: 2n ** 38n })],
    ['2^38 KV pairs', file({ nKv: 2n ** 38n })],
    ['a 2^40-byte string', withKv(rawKv('x', T.STRING, enc.str('abc', 2n ** 40n)))],
  ];
  for (const [what, bytes] of cases) {
    try {
      parseGguf(bytes, HUGE);
      assert.fail(`${what}: parsed`);
    } catch (e) {
      assert.ok(e instanceof GgufNeedMore || (e instanceof AglmError && e.code === 'GGUF_INVALID'), `${what}: ${e}`);
    }
  }
});

type Tally = Record<string, number>;
const bump = (tally: Tally, code: string) => void (tally[code] = (tally[code] ?? 0) + 1);

function assertGgufOutcome(code: string, label: string): void {
  assert.ok(code === 'ok' || code.startsWith('GGUF_'), `${label}: ${code}`);
}

function truncationPoints(size: number): number[] {
  const rand = prng(260);
  const fixed = [0, 1, 3, 4, 8, 16, 24, HEADER_END - 1, HEADER_END, HEADER_END + 1, 14175, 14176, 14177, size - 1];
  const inHeader = Array.from({ length: 36 }, () => Math.floor(rand() * HEADER_END));
  const anywhere = Array.from({ length: 100 - fixed.length - inHeader.length }, () => Math.floor(rand() * size));
  return [...fixed, ...inHeader, ...anywhere];
}

test('stories260K cut at 100 points always fails with a GGUF code', { timeout: 60_000 }, async (t) => {
  const tally: Tally = {};
  for (const [i, n] of truncationPoints(MODEL.length).entries()) {
    let code: string;
    if (i % 5 === 0) {
      const path = join(tmp, `cut-${n}.gguf`);
      writeFileSync(path, MODEL.subarray(0, n));
      code = await asyncCodeOf(() => readGguf(path));
    } else {
      code = codeOf(() => parseGguf(MODEL.subarray(0, n)));
    }
    assert.ok(code.startsWith('GGUF_'), `cut at ${n}: ${code}`);
    bump(tally, code);
  }
  t.diagnostic(`truncations: ${JSON.stringify(tally)}`);
});

/** Damage `buf` in place as copy number `i` of the fuzz run; returns the changes to undo. */
function damage(buf: Buffer, i: number, rand: () => number, limit: number): [number, number][] {
  const saved: [number, number][] = [];
  const set = (pos: number, v: number) => {
    saved.push([pos, buf[pos]]);
    buf[pos] = v;
  };
  const at = () => Math.floor(rand() * limit);
  const byte = () => 1 + Math.floor(rand() * 255);
  if (i % 10 < 8) {
    const pos = at();
    set(pos, buf[pos] ^ byte()); // one byte, random bit pattern
  } else if (i % 10 === 8) {
    for (let k = 2 + Math.floor(rand() * 7); k > 0; k--) {
      const pos = at();
      set(pos, buf[pos] ^ byte()); // several scattered bytes
    }
  } else {
    const start = at();
    for (let k = 1 + Math.floor(rand() * 8); k > 0 && start + k <= limit; k--) set(start + k - 1, Math.floor(rand() * 256)); // a run
  }
  return saved;
}

async function fuzz(original: Buffer, copies: number, seed: number, limit: number, onDisk: number): Promise<Tally> {
  const buf = Buffer.from(original);
  const rand = prng(seed);
  const tally: Tally = {};
  for (let i = 0; i < copies; i++) {
    const saved = damage(buf, i, rand, limit);
    const label = `copy ${i} (${saved.map(([p]) => p).join(',')})`;
    let code: string;
    if (i < onDisk) {
      const path = join(tmp, `flip-${seed}-${i}.gguf`);
      writeFileSync(path, buf);
      code = await asyncCodeOf(() => readGguf(path));
    } else {
      code = codeOf(() => parseGguf(buf));
    }
    assertGgufOutcome(code, label);
    bump(tally, code);
    for (const [pos, v] of saved.reverse()) buf[pos] = v;
  }
  assert.ok(buf.equals(original));
  return tally;
}

test('1000 damaged copies of the stories260K header parse or fail with a GGUF code', { timeout: 60_000 }, async (t) => {
  const tally = await fuzz(MODEL, 1000, 1234, HEADER_END, 80);
  t.diagnostic(`byte flips: ${JSON.stringify(tally)}`);
  assert.ok((tally.ok ?? 0) < 1000, 'some damage is detected');
});

test('300 damaged copies of a file with every value type parse or fail with a GGUF code', { timeout: 60_000 }, async (t) => {
  const metadata: GgufEntry[] = [
    { key: 's', type: T.STRING, value: 'héllo' },
    { key: 'u64', type: T.UINT64, value: 2n ** 64n - 1n },
    { key: 'i8', type: T.INT8, value: -3 },
    { key: 'f64', type: T.FLOAT64, value: 0.25 },
    { key: 'b', type: T.BOOL, value: true },
    { key: 'strs', type: T.ARRAY, value: { itemType: T.STRING, items: ['a', 'bc', ''] } },
    { key: 'nest', type: T.ARRAY, value: { itemType: T.ARRAY, items: [{ itemType: T.INT16, items: new Int16Array([1, -1]) }] } },
    { key: 'general.alignment', type: T.UINT32, value: 64 },
  ];
  const tensors = [
    { name: 'q', type: GgmlType.Q8_0, dims: [32, 2], data: new Uint8Array(68) },
    { name: 'k', type: GgmlType.Q4_K, dims: [256], data: new Uint8Array(144) },
  ];
  const bytes = Buffer.from(serializeGguf({ metadata, tensors }));
  const f = parseGguf(bytes);
  const tally = await fuzz(bytes, 300, 99, f.headerBytes, 20);
  t.diagnostic(`byte flips (every type): ${JSON.stringify(tally)}`);
});
