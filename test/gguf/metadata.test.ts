// Tests for GgufMetadata: order, lookups, typed getters and their errors, toJSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAglmError } from '../../lib/errors.js';
import { GgufMetadata, GgufValueType as T, type GgufEntry } from '../../lib/gguf/index.js';

const entries: GgufEntry[] = [
  { key: 'general.architecture', type: T.STRING, value: 'llama' },
  { key: 'u8', type: T.UINT8, value: 7 },
  { key: 'f32', type: T.FLOAT32, value: 1.5 },
  { key: 'f64', type: T.FLOAT64, value: -2.25 },
  { key: 'u64.safe', type: T.UINT64, value: 2n ** 53n - 1n },
  { key: 'u64.big', type: T.UINT64, value: 2n ** 64n - 1n },
  { key: 'i64', type: T.INT64, value: -5n },
  { key: 'flag', type: T.BOOL, value: true },
  { key: 'tokens', type: T.ARRAY, value: { itemType: T.STRING, items: ['a', 'b'] } },
  { key: 'scores', type: T.ARRAY, value: { itemType: T.FLOAT32, items: new Float32Array([0.5, 1]) } },
  { key: 'big64', type: T.ARRAY, value: { itemType: T.INT64, items: new BigInt64Array([1n, -2n]) } },
  { key: 'huge64', type: T.ARRAY, value: { itemType: T.UINT64, items: new BigUint64Array([2n ** 60n]) } },
  { key: 'long', type: T.ARRAY, value: { itemType: T.INT32, items: new Int32Array(65) } },
  { key: 'bools', type: T.ARRAY, value: { itemType: T.BOOL, items: new Uint8Array([1, 0]) } },
  { key: 'nested', type: T.ARRAY, value: { itemType: T.ARRAY, items: [{ itemType: T.UINT8, items: new Uint8Array([1]) }] } },
];
const m = new GgufMetadata(entries);

function missingKey(key: string) {
  return (e: unknown) => isAglmError(e, 'GGUF_MISSING_KEY') && e.message.includes(JSON.stringify(key));
}

test('keeps file order and looks keys up', () => {
  assert.equal(m.size, entries.length);
  assert.deepEqual(m.keys(), entries.map((e) => e.key));
  assert.deepEqual(m.entries(), entries);
  assert.equal(m.get('u8'), 7);
  assert.equal(m.getEntry('flag')?.type, T.BOOL);
  assert.equal(m.has('flag'), true);
  assert.equal(m.has('nope'), false);
  assert.equal(m.get('nope'), undefined);
});

test('typed getters return values of compatible types', () => {
  assert.equal(m.getString('general.architecture'), 'llama');
  assert.equal(m.getNumber('u8'), 7);
  assert.equal(m.getNumber('f32'), 1.5);
  assert.equal(m.getNumber('f64'), -2.25);
  assert.equal(m.getNumber('u64.safe'), 2 ** 53 - 1);
  assert.equal(m.getNumber('i64'), -5);
  assert.equal(m.getBoolean('flag'), true);
  assert.deepEqual(m.getStringArray('tokens'), ['a', 'b']);
  const scores = m.getNumberArray('scores');
  assert.ok(scores instanceof Float32Array);
  assert.deepEqual(m.getNumberArray('big64'), [1, -2]);
  assert.equal(m.getArray('nested').itemType, T.ARRAY);
});

test('typed getters throw GGUF_MISSING_KEY for absent keys and wrong types', () => {
  assert.throws(() => m.getString('absent'), missingKey('absent'));
  assert.throws(() => m.getString('u8'), (e) => isAglmError(e, 'GGUF_MISSING_KEY') && /UINT8/.test(e.message));
  assert.throws(() => m.getNumber('general.architecture'), missingKey('general.architecture'));
  assert.throws(() => m.getNumber('flag'), missingKey('flag'));
  assert.throws(() => m.getNumber('u64.big'), missingKey('u64.big'));
  assert.throws(() => m.getBoolean('u8'), missingKey('u8'));
  assert.throws(() => m.getStringArray('scores'), missingKey('scores'));
  assert.throws(() => m.getNumberArray('tokens'), missingKey('tokens'));
  assert.throws(() => m.getNumberArray('bools'), missingKey('bools'));
  assert.throws(() => m.getNumberArray('huge64'), missingKey('huge64'));
  assert.throws(() => m.getArray('u8'), missingKey('u8'));
});

test('optional getters return undefined when absent and still throw on a wrong type', () => {
  assert.equal(m.optString('absent'), undefined);
  assert.equal(m.optNumber('absent'), undefined);
  assert.equal(m.optBoolean('absent'), undefined);
  assert.equal(m.optStringArray('absent'), undefined);
  assert.equal(m.optNumberArray('absent'), undefined);
  assert.equal(m.optString('general.architecture'), 'llama');
  assert.equal(m.optNumber('f32'), 1.5);
  assert.throws(() => m.optString('u8'), missingKey('u8'));
  assert.throws(() => m.optNumber('tokens'), missingKey('tokens'));
  assert.throws(() => m.optBoolean('general.architecture'), missingKey('general.architecture'));
  assert.throws(() => m.optStringArray('scores'), missingKey('scores'));
  assert.throws(() => m.optNumberArray('tokens'), missingKey('tokens'));
});

test('toJSON summarises long arrays and survives JSON.stringify', () => {
  const j = m.toJSON();
  assert.deepEqual(j.long, { type: 'INT32', length: 65 });
  assert.deepEqual(j.scores, [0.5, 1]);
  assert.deepEqual(j.tokens, ['a', 'b']);
  assert.deepEqual(j.bools, [true, false]);
  assert.deepEqual(j.nested, [[1]]);
  assert.equal(j['u64.safe'], 2 ** 53 - 1);
  assert.equal(j['u64.big'], '18446744073709551615');
  assert.deepEqual(j.big64, [1, -2]);
  assert.doesNotThrow(() => JSON.stringify(m));
});

test('a duplicate key is refused', () => {
  assert.throws(
    () => new GgufMetadata([entries[0], entries[0]]),
    (e) => isAglmError(e, 'INVALID_ARGUMENT'),
  );
});
