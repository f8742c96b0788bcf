// Tests for the GGML tensor type table and byte-size helpers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAglmError } from '../../lib/errors.js';
import { GgmlType, ggmlRowBytes, ggmlTensorBytes, ggmlTypeInfo, ggmlTypeName } from '../../lib/gguf/index.js';

test('type ids, block sizes and bytes per block match ggml', () => {
  const expected: [keyof typeof GgmlType, number, number, number][] = [
    ['F32', 0, 1, 4], ['F16', 1, 1, 2], ['Q4_0', 2, 32, 18], ['Q4_1', 3, 32, 20],
    ['Q5_0', 6, 32, 22], ['Q5_1', 7, 32, 24], ['Q8_0', 8, 32, 34], ['Q8_1', 9, 32, 36],
    ['Q2_K', 10, 256, 84], ['Q3_K', 11, 256, 110], ['Q4_K', 12, 256, 144], ['Q5_K', 13, 256, 176],
    ['Q6_K', 14, 256, 210], ['Q8_K', 15, 256, 292], ['IQ2_XXS', 16, 256, 66], ['IQ2_XS', 17, 256, 74],
    ['IQ3_XXS', 18, 256, 98], ['IQ1_S', 19, 256, 50], ['IQ4_NL', 20, 32, 18], ['IQ3_S', 21, 256, 110],
    ['IQ2_S', 22, 256, 82], ['IQ4_XS', 23, 256, 136], ['I8', 24, 1, 1], ['I16', 25, 1, 2],
    ['I32', 26, 1, 4], ['I64', 27, 1, 8], ['F64', 28, 1, 8], ['IQ1_M', 29, 256, 56],
    ['BF16', 30, 1, 2], ['TQ1_0', 34, 256, 54], ['TQ2_0', 35, 256, 66], ['MXFP4', 39, 32, 17],
  ];
  assert.equal(Object.keys(GgmlType).length, expected.length);
  for (const [name, id, blockSize, typeSize] of expected) {
    assert.equal(GgmlType[name], id, name);
    assert.deepEqual({ ...ggmlTypeInfo(id) }, { id, name, blockSize, typeSize }, name);
    assert.equal(ggmlTypeName(id), name);
  }
});

test('removed and unknown ids have no info', () => {
  for (const id of [4, 5, 31, 32, 33, 36, 37, 38, 40, -1, 1.5, 1000]) {
    assert.equal(ggmlTypeInfo(id), undefined, String(id));
    assert.equal(ggmlTypeName(id), `unknown(${id})`);
  }
});

test('row and tensor byte sizes', () => {
  assert.equal(ggmlRowBytes(GgmlType.F32, 64), 256);
  assert.equal(ggmlRowBytes(GgmlType.Q4_K, 512), 288);
  assert.equal(ggmlRowBytes(GgmlType.Q8_0, 64), 68);
  assert.equal(ggmlTensorBytes(GgmlType.F32, [64, 512]), 131072);
  assert.equal(ggmlTensorBytes(GgmlType.Q8_0, [64, 3, 2]), 68 * 6);
  assert.equal(ggmlTensorBytes(GgmlType.F16, [7]), 14);
  assert.throws(() => ggmlRowBytes(GgmlType.Q4_K, 100), (e) => isAglmError(e, 'INVALID_ARGUMENT') && /block/.test(e.message));
  assert.throws(() => ggmlTensorBytes(GgmlType.Q8_0, [16, 2]), (e) => isAglmError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => ggmlRowBytes(4, 32), (e) => isAglmError(e, 'INVALID_ARGUMENT'));
});
