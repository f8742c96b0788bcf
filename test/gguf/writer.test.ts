// Tests for the GGUF writer: value round trips, versions, alignment, tensor layout, streaming, and rewriting stories260K.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isAglmError } from '../../lib/errors.js';
import {
  GgmlType,
  GgufValueType as T,
  parseGguf,
  readGguf,
  serializeGguf,
  serializeGgufHeader,
  writeGguf,
  type GgufEntry,
  type GgufValue,
  type GgufWriteSpec,
} from '../../lib/gguf/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'aglm-gguf-writer-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const f32Bits = (...bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);
const f64Bits = (...bits: bigint[]) => new Float64Array(new BigUint64Array(bits).buffer);
const arr = (itemType: T, items: GgufValue[] | ArrayLike<unknown>): GgufValue => ({ itemType, items }) as GgufValue;

/** A comparable form of a value: typed arrays by constructor and exact bytes, -0 and NaN kept apart from 0. */
function canon(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return { [v.constructor.name]: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : v;
  if (typeof v === 'bigint') return `${v}n`;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, canon(x)]));
  return v;
}

const everyValue: GgufEntry[] = [
  { key: 'u8.min', type: T.UINT8, value: 0 },
  { key: 'u8.max', type: T.UINT8, value: 255 },
  { key: 'i8.min', type: T.INT8, value: -128 },
  { key: 'i8.max', type: T.INT8, value: 127 },
  { key: 'u16.max', type: T.UINT16, value: 65535 },
  { key: 'i16.min', type: T.INT16, value: -32768 },
  { key: 'u32.max', type: T.UINT32, value: 4294967295 },
  { key: 'i32.min', type: T.INT32, value: -2147483648 },
  { key: 'i32.max', type: T.INT32, value: 2147483647 },
  { key: 'f32', type: T.FLOAT32, value: 1.5 },
  { key: 'f32.neg0', type: T.FLOAT32, value: -0 },
  { key: 'f32.nan', type: T.FLOAT32, value: NaN },
  { key: 'f32.inf', type: T.FLOAT32, value: -Infinity },
  { key: 'f32.tiny', type: T.FLOAT32, value: f32Bits(1)[0] },
  { key: 'bool.true', type: T.BOOL, value: true },
  { key: 'bool.false', type: T.BOOL, value: false },
  { key: 'str', type: T.STRING, value: 'llama' },
  { key: 'str.empty', type: T.STRING, value: '' },
  { key: 'str.unicode', type: T.STRING, value: 'héllo ▁ 日本語 🦙 \u0000 \ufeff' },
  { key: 'u64.min', type: T.UINT64, value: 0n },
  { key: 'u64.max', type: T.UINT64, value: 2n ** 64n - 1n },
  { key: 'i64.min', type: T.INT64, value: -(2n ** 63n) },
  { key: 'i64.max', type: T.INT64, value: 2n ** 63n - 1n },
  { key: 'f64', type: T.FLOAT64, value: Math.PI },
  { key: 'f64.neg0', type: T.FLOAT64, value: -0 },
  { key: 'f64.nan', type: T.FLOAT64, value: NaN },
  { key: 'f64.min', type: T.FLOAT64, value: Number.MIN_VALUE },
  { key: 'a.u8', type: T.ARRAY, value: arr(T.UINT8, new Uint8Array([0, 1, 255])) },
  { key: 'a.i8', type: T.ARRAY, value: arr(T.INT8, new Int8Array([-128, 0, 127])) },
  { key: 'a.u16', type: T.ARRAY, value: arr(T.UINT16, new Uint16Array([0, 65535])) },
  { key: 'a.i16', type: T.ARRAY, value: arr(T.INT16, new Int16Array([-32768, 32767])) },
  { key: 'a.u32', type: T.ARRAY, value: arr(T.UINT32, new Uint32Array([0, 4294967295])) },
  { key: 'a.i32', type: T.ARRAY, value: arr(T.INT32, new Int32Array([-2147483648, 2147483647])) },
  { key: 'a.f32.bits', type: T.ARRAY, value: arr(T.FLOAT32, f32Bits(0x7fc00001, 0xffffffff, 0x80000000, 0x7f800000, 0x3f800000)) },
  { key: 'a.f64.bits', type: T.ARRAY, value: arr(T.FLOAT64, f64Bits(0x7ff8000000000001n, 0x8000000000000000n, 0xfff0000000000000n)) },
  { key: 'a.bool', type: T.ARRAY, value: arr(T.BOOL, new Uint8Array([1, 0, 1])) },
  { key: 'a.u64', type: T.ARRAY, value: arr(T.UINT64, new BigUint64Array([0n, 2n ** 64n - 1n])) },
  { key: 'a.i64', type: T.ARRAY, value: arr(T.INT64, new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n])) },
  { key: 'a.str', type: T.ARRAY, value: arr(T.STRING, ['', 'a', '▁the', '🦙', '<0x0A>']) },
  { key: 'a.empty.str', type: T.ARRAY, value: arr(T.STRING, []) },
  { key: 'a.empty.f32', type: T.ARRAY, value: arr(T.FLOAT32, new Float32Array(0)) },
  { key: 'a.empty.arr', type: T.ARRAY, value: arr(T.ARRAY, []) },
  {
    key: 'a.nested',
    type: T.ARRAY,
    value: arr(T.ARRAY, [arr(T.INT32, new Int32Array([1, 2])), arr(T.INT32, new Int32Array(0)), arr(T.STRING, ['x'])]),
  },
  {
    key: 'a.nested.mixed',
    type: T.ARRAY,
    value: arr(T.ARRAY, [arr(T.ARRAY, [arr(T.UINT64, new BigUint64Array([7n]))]), arr(T.BOOL, new Uint8Array([0]))]),
  },
];

function nest(depth: number): GgufValue {
  let v = arr(T.UINT8, new Uint8Array([depth]));
  for (let d = 1; d < depth; d++) v = arr(T.ARRAY, [v]);
  return v;
}

test('every value type round-trips exactly, nested arrays and 64-bit extremes included', () => {
  const metadata = [...everyValue, { key: 'a.depth8', type: T.ARRAY, value: nest(8) }];
  const f = parseGguf(serializeGguf({ metadata, tensors: [] }));
  assert.deepEqual(canon(f.metadata.entries()), canon(metadata));
  assert.ok(Object.is(f.metadata.get('f32.neg0'), -0));
  assert.ok(Number.isNaN(f.metadata.get('f64.nan')));
  assert.equal(f.metadata.get('u64.max'), 2n ** 64n - 1n);
});

test('plain arrays are accepted for every item type and read back as typed arrays', () => {
  const metadata: GgufEntry[] = [
    { key: 'p.i32', type: T.ARRAY, value: arr(T.INT32, [1, -2, 3]) },
    { key: 'p.f32', type: T.ARRAY, value: arr(T.FLOAT32, [0.5, -0]) },
    { key: 'p.bool', type: T.ARRAY, value: arr(T.BOOL, [true, false]) },
    { key: 'p.u64', type: T.ARRAY, value: arr(T.UINT64, [1n, 2]) },
  ];
  const m = parseGguf(serializeGguf({ metadata, tensors: [] })).metadata;
  assert.deepEqual(canon(m.get('p.i32')), canon(arr(T.INT32, new Int32Array([1, -2, 3]))));
  assert.deepEqual(canon(m.get('p.f32')), canon(arr(T.FLOAT32, new Float32Array([0.5, -0]))));
  assert.deepEqual(canon(m.get('p.bool')), canon(arr(T.BOOL, new Uint8Array([1, 0]))));
  assert.deepEqual(canon(m.get('p.u64')), canon(arr(T.UINT64, new BigUint64Array([1n, 2n]))));
});

const TENSOR_CASES = [
  { name: 'f32', type: GgmlType.F32, dims: [4, 3], bytes: 48 },
  { name: 'f16', type: GgmlType.F16, dims: [8, 2], bytes: 32 },
  { name: 'q8_0', type: GgmlType.Q8_0, dims: [64, 2], bytes: 2 * 2 * 34 },
  { name: 'q4_k', type: GgmlType.Q4_K, dims: [256], bytes: 144 },
  { name: 'i8', type: GgmlType.I8, dims: [5], bytes: 5 },
  { name: 'bf16.3d', type: GgmlType.BF16, dims: [3, 1, 2], bytes: 12 },
];

function tensorSpec(version: 2 | 3, alignment: number): GgufWriteSpec {
  return {
    version,
    alignment,
    metadata: [{ key: 'general.architecture', type: T.STRING, value: 'test' }],
    tensors: TENSOR_CASES.map((c, i) => ({
      name: c.name,
      type: c.type,
      dims: c.dims,
      data: Uint8Array.from({ length: c.bytes }, (_, j) => (i * 31 + j) & 0xff),
    })),
  };
}

for (const version of [2, 3] as const) {
  for (const alignment of [32, 64, 1, 256]) {
    test(`v${version}, alignment ${alignment}: tensors read back at aligned offsets with identical bytes`, () => {
      const spec = tensorSpec(version, alignment);
      const bytes = serializeGguf(spec);
      const f = parseGguf(bytes);
      assert.equal(f.version, version);
      assert.equal(f.alignment, alignment);
      assert.equal(f.metadata.has('general.alignment'), alignment !== 32);
      if (alignment !== 32) assert.equal(f.metadata.getNumber('general.alignment'), alignment);
      assert.equal(f.dataOffset % alignment, 0);
      assert.ok(f.dataOffset >= f.headerBytes && f.dataOffset - f.headerBytes < alignment);
      assert.deepEqual(serializeGgufHeader(spec), bytes.subarray(0, f.dataOffset));
      f.tensors.forEach((t, i) => {
        const c = TENSOR_CASES[i];
        assert.equal(t.name, c.name);
        assert.equal(t.type, c.type);
        assert.deepEqual(t.dims, c.dims);
        assert.equal(t.byteLength, c.bytes, `${c.name} size`);
        assert.equal((t.offset - f.dataOffset) % alignment, 0, `${c.name} offset`);
        assert.deepEqual(bytes.subarray(t.offset, t.offset + t.byteLength), spec.tensors[i].data);
      });
      assert.equal(bytes.length % alignment, 0);
    });
  }
}

test('general.alignment given in the metadata is used, and must agree with the alignment option', () => {
  const metadata: GgufEntry[] = [{ key: 'general.alignment', type: T.UINT32, value: 32 }];
  const f = parseGguf(serializeGguf({ metadata, tensors: [] }));
  assert.equal(f.metadata.getNumber('general.alignment'), 32);
  const withTensor = { ...tensorSpec(3, 64), metadata: [{ key: 'general.alignment', type: T.UINT32, value: 64 }] };
  assert.equal(parseGguf(serializeGguf(withTensor)).alignment, 64);
  const bad = (spec: GgufWriteSpec) => () => serializeGguf(spec);
  const invalid = (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT');
  assert.throws(bad({ ...withTensor, alignment: 128 }), invalid);
  assert.throws(bad({ ...withTensor, alignment: 48 }), invalid);
  assert.throws(bad({ metadata: [{ key: 'general.alignment', type: T.UINT64, value: 32n }], tensors: [] }), invalid);
  assert.throws(bad({ metadata: [{ key: 'general.alignment', type: T.UINT32, value: 24 }], tensors: [] }), invalid);
});

test('bad specs are refused with INVALID_ARGUMENT', () => {
  const base = tensorSpec(3, 32);
  const t0 = base.tensors[0];
  const cases: [string, GgufWriteSpec][] = [
    ['duplicate key', { metadata: [everyValue[0], everyValue[0]], tensors: [] }],
    ['empty key', { metadata: [{ key: '', type: T.UINT8, value: 1 }], tensors: [] }],
    ['long key', { metadata: [{ key: 'k'.repeat(65536), type: T.UINT8, value: 1 }], tensors: [] }],
    ['unknown value type', { metadata: [{ key: 'k', type: 13 as T, value: 1 }], tensors: [] }],
    ['u8 out of range', { metadata: [{ key: 'k', type: T.UINT8, value: 256 }], tensors: [] }],
    ['i32 not an integer', { metadata: [{ key: 'k', type: T.INT32, value: 1.5 }], tensors: [] }],
    ['u64 negative', { metadata: [{ key: 'k', type: T.UINT64, value: -1n }], tensors: [] }],
    ['i64 too big', { metadata: [{ key: 'k', type: T.INT64, value: 2n ** 63n }], tensors: [] }],
    ['string given a number', { metadata: [{ key: 'k', type: T.STRING, value: 5 }], tensors: [] }],
    ['bool given a number', { metadata: [{ key: 'k', type: T.BOOL, value: 1 }], tensors: [] }],
    ['wrong typed array', { metadata: [{ key: 'k', type: T.ARRAY, value: arr(T.FLOAT32, new Float64Array(1)) }], tensors: [] }],
    ['array item of the wrong type', { metadata: [{ key: 'k', type: T.ARRAY, value: arr(T.STRING, ['a', 1]) }], tensors: [] }],
    ['nested too deep', { metadata: [{ key: 'k', type: T.ARRAY, value: nest(9) }], tensors: [] }],
    ['duplicate tensor', { metadata: [], tensors: [t0, t0] }],
    ['unknown tensor type', { metadata: [], tensors: [{ ...t0, type: 4 }] }],
    ['no dims', { metadata: [], tensors: [{ ...t0, dims: [] }] }],
    ['five dims', { metadata: [], tensors: [{ ...t0, dims: [1, 1, 1, 1, 12] }] }],
    ['zero dim', { metadata: [], tensors: [{ ...t0, dims: [12, 0] }] }],
    ['ne0 not a whole block', { metadata: [], tensors: [{ name: 'q', type: GgmlType.Q8_0, dims: [16], data: new Uint8Array(17) }] }],
    ['data length disagrees', { metadata: [], tensors: [{ ...t0, data: new Uint8Array(47) }] }],
    ['lazy data in serializeGguf', { metadata: [], tensors: [{ ...t0, data: () => new Uint8Array(48) }] }],
    ['version 1', { version: 1 as 3, metadata: [], tensors: [] }],
  ];
  for (const [what, spec] of cases) {
    assert.throws(() => serializeGguf(spec), (e) => isAglmError(e, 'INVALID_ARGUMENT'), what);
  }
});

test('writeGguf streams lazily produced tensors one at a time, through a .tmp file', async () => {
  const spec = tensorSpec(3, 64);
  const expected = serializeGguf(spec);
  const offsets = parseGguf(expected).tensors.map((t) => t.offset);
  const path = join(tmp, 'lazy.gguf');
  const calls: number[] = [];
  const lazy: GgufWriteSpec = {
    ...spec,
    tensors: spec.tensors.map((t, i) => ({
      ...t,
      data: async () => {
        calls.push(i);
        // Everything before this tensor is on disk already; nothing after it has been asked for.
        assert.equal(statSync(`${path}.tmp`).size, offsets[i]);
        await new Promise((r) => setTimeout(r, 1));
        return t.data as Uint8Array;
      },
    })),
  };
  await writeGguf(path, lazy);
  assert.deepEqual(calls, [0, 1, 2, 3, 4, 5]);
  assert.equal(existsSync(`${path}.tmp`), false);
  assert.deepEqual(new Uint8Array(readFileSync(path)), expected);
  const f = await readGguf(path);
  assert.equal(f.alignment, 64);
});

test('writeGguf leaves nothing behind when tensor data is wrong', async () => {
  const path = join(tmp, 'bad.gguf');
  const spec = tensorSpec(3, 32);
  spec.tensors[2] = { ...spec.tensors[2], data: () => new Uint8Array(3) };
  await assert.rejects(writeGguf(path, spec), (e) => isAglmError(e, 'INVALID_ARGUMENT') && /q8_0/.test(e.message));
  assert.equal(existsSync(path), false);
  assert.equal(existsSync(`${path}.tmp`), false);
  await assert.rejects(writeGguf(join(tmp, 'no', 'such', 'dir.gguf'), tensorSpec(3, 32)), (e) => isAglmError(e, 'IO_ERROR'));
});

test('rewriting stories260K.gguf gives the identical file', async () => {
  // The original was written by llama.cpp's GGUF writer: KV pairs and tensor infos in order, each tensor's data
  // padded to the alignment. Writing the same entries and tensors in the same order reproduces it byte for byte.
  const original = readFileSync('models/stories260K.gguf');
  const f = await readGguf('models/stories260K.gguf');
  const path = join(tmp, 'stories-rewritten.gguf');
  await writeGguf(path, {
    version: f.version,
    metadata: f.metadata.entries(),
    tensors: f.tensors.map((t) => ({
      name: t.name,
      type: t.type,
      dims: t.dims,
      data: () => original.subarray(t.offset, t.offset + t.byteLength),
    })),
  });
  const g = await readGguf(path);
  assert.deepEqual(canon(g.metadata.entries()), canon(f.metadata.entries()));
  assert.deepEqual(g.tensors, f.tensors);
  assert.equal(g.dataOffset, f.dataOffset);
  assert.ok(readFileSync(path).equals(original), 'byte-identical');
});
