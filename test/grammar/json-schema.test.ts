// JSON schema -> GBNF: integer and number ranges checked value by value, every suite schema's random sentences valid
// under ajv, hand-written valid and invalid documents judged as ajv judges them, and the unsupported keywords refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 as Ajv } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { Grammar, jsonSchemaToGbnf } from '../../lib/grammar/index.js';
import { parseGbnf } from '../../lib/grammar/gbnf.js';
import { isAglmError } from '../../lib/errors.js';
import { randomSentence } from '../helpers/gbnf-recognizer.js';
import { SCHEMAS } from './schemas.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export function makeAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('integer ranges: exactly the integers in the bounds, no leading zeros, no -0', () => {
  const cases: [number | undefined, number | undefined][] = [[0, 9], [-5, 5], [-123, 4567], [100, 599], [7, 7], [-999, -10], [0, undefined], [undefined, 42], [1000000, undefined]];
  for (const [min, max] of cases) {
    const schema: Record<string, unknown> = { type: 'integer' };
    if (min !== undefined) schema.minimum = min;
    if (max !== undefined) schema.maximum = max;
    const g = Grammar.fromJsonSchema(schema);
    const lo = (min ?? -3000) - 1100, hi = (max ?? 3000) + 1100;
    for (let v = lo; v <= hi; v++) {
      const want = (min === undefined || v >= min) && (max === undefined || v <= max);
      assert.equal(g.test(String(v)), want, `${JSON.stringify(schema)}: ${v}`);
    }
    for (const bad of ['007', '-0', '00', '+5', '5.0', '']) assert.equal(g.test(bad), false, `${JSON.stringify(schema)}: ${JSON.stringify(bad)}`);
  }
  const big = Grammar.fromJsonSchema({ type: 'integer', minimum: 1000000 });
  assert.equal(big.test('999999999999999'), true);
  assert.equal(big.test('9999999999999999'), true);
  assert.equal(big.test('99999999999999999'), false, 'more than 16 digits');
});

test('number bounds: every accepted decimal lies in the bounds; integers and simple fractions inside are accepted', () => {
  const rand = rng(3);
  const cases = [
    { minimum: -50, maximum: 50 },
    { exclusiveMinimum: 0, exclusiveMaximum: 1 },
    { minimum: 2.5, maximum: 7.25 },
    { minimum: -3 },
    { maximum: -2 },
    { exclusiveMinimum: -1, maximum: 0 },
  ];
  for (const bounds of cases) {
    const schema = { type: 'number', ...bounds } as unknown as Record<string, number | string>;
    const g = Grammar.fromJsonSchema(schema);
    const inside = (x: number) =>
      (schema.minimum === undefined || x >= (schema.minimum as number)) && (schema.maximum === undefined || x <= (schema.maximum as number)) &&
      (schema.exclusiveMinimum === undefined || x > (schema.exclusiveMinimum as number)) && (schema.exclusiveMaximum === undefined || x < (schema.exclusiveMaximum as number));
    let accepted = 0;
    for (let i = 0; i < 4000; i++) {
      const int = Math.floor(rand() * 140) - 70;
      const text = rand() < 0.5 ? String(int) : `${int < 0 || (int === 0 && rand() < 0.5) ? '-' : ''}${Math.abs(int)}.${Math.floor(rand() * 1000)}`;
      if (g.test(text)) {
        accepted++;
        assert.ok(inside(Number(text)), `${JSON.stringify(bounds)}: ${text} accepted but outside`);
      } else if (/^-?\d+$/.test(text) && text !== '-0') {
        assert.equal(inside(Number(text)), false, `${JSON.stringify(bounds)}: integer ${text} inside but refused`);
      }
    }
    assert.ok(accepted >= 3, `${JSON.stringify(bounds)}: only ${accepted} accepted`);
  }
  const r = Grammar.fromJsonSchema({ type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 });
  assert.equal(r.test('0.5'), true);
  assert.equal(r.test('0'), false);
  assert.equal(r.test('1'), false);
  const n = Grammar.fromJsonSchema({ type: 'number' });
  for (const ok of ['0', '-1.5', '3e10', '2.5E-3', '1234567890123456']) assert.equal(n.test(ok), true, ok);
  for (const bad of ['01', '.5', '1.', '1e', '--1', 'NaN', '1e999']) assert.equal(n.test(bad), false, bad);
});

test('random sentences of every suite schema are valid under ajv', () => {
  const ajv = makeAjv();
  const rand = rng(11);
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const gbnf = jsonSchemaToGbnf(schema);
    const ast = parseGbnf(gbnf);
    const validate = ajv.compile(schema);
    const g = new Grammar(gbnf);
    let n = 0;
    for (let i = 0; i < 3000 && n < 60; i++) {
      const s = randomSentence(ast, rand, 'root', 60);
      if (s === undefined) continue;
      n++;
      assert.equal(g.test(s), true, `${name}: ${s}`);
      let value: unknown;
      assert.doesNotThrow(() => (value = JSON.parse(s)), `${name}: not JSON: ${s}`);
      assert.ok(validate(value), `${name}: ${s}: ${ajv.errorsText(validate.errors)}`);
    }
    assert.ok(n >= 20, `${name}: only ${n} sentences`);
  }
});

test('hand-written documents: valid ones accepted when written in declared order; invalid ones refused', () => {
  const g = (name: string) => Grammar.fromJsonSchema(SCHEMAS[name]);
  assert.equal(g('person').test('{"name": "Ann", "age": 31, "email": "ann@example.com"}'), true);
  assert.equal(g('person').test('{"name":"Ann","age":31}'), true);
  assert.equal(g('person').test('{\n  "name": "Ann",\n  "age": 31\n}'), true);
  assert.equal(g('person').test('{"name":"Ann"}'), false, 'age is required');
  assert.equal(g('person').test('{"name":"Ann","age":121}'), false);
  assert.equal(g('person').test('{"name":"Ann","age":3,"x":1}'), false, 'no undeclared properties');
  assert.equal(g('status').test('{"status":"ok","code":200}'), true);
  assert.equal(g('status').test('{"status":"fine","code":200}'), false);
  assert.equal(g('shapes').test('{"shape":{"kind":"circle","radius":2.5}}'), true);
  assert.equal(g('shapes').test('{"shape":{"kind":"rect","w":3,"h":4}}'), true);
  assert.equal(g('shapes').test('{"shape":{"kind":"circle","w":3,"h":4}}'), false);
  assert.equal(g('tree').test('{"value":1,"children":[{"value":2},{"value":3,"children":[]}]}'), true);
  assert.equal(g('tree').test('{"value":1,"children":[{"value":2},{"value":3},{"value":4}]}'), false, 'maxItems 2');
  assert.equal(g('tuple').test('["a", 1, true]'), true);
  assert.equal(g('tuple').test('["a", 1]'), false);
  assert.equal(g('tuple').test('["a", 1, true, 2]'), false);
  assert.equal(g('date-time').test('{"date":"2024-02-28","time":"12:30:00Z","at":"2024-01-01T00:00:00.5Z"}'), true);
  assert.equal(g('date-time').test('{"date":"2024-13-01","time":"12:30:00Z","at":"2024-01-01T00:00:00Z"}'), false);
  assert.equal(g('map').test('{"a":1,"b":2,"c":3}'), true);
  assert.equal(g('map').test('{"a":1,"b":2,"c":3,"d":4}'), false);
  assert.equal(g('map').test('{}'), true);
  assert.equal(g('consts').test('{"version":2,"kind":"event","tags":["a","b"]}'), true);
  assert.equal(g('string-array').test('{"words":["a"]}'), false);
  assert.equal(g('all-of').test('{"a":3,"b":"y"}'), true);
  assert.equal(g('all-of').test('{"a":3}'), false);
  const strings = Grammar.fromJsonSchema({ type: 'string' });
  for (const ok of ['""', '"a b"', '"\\u00e9\\n\\"q\\""', '"é 😀"']) assert.equal(strings.test(ok), true, ok);
  for (const bad of ['"a', '"\\x"', '"tab\there"', "'a'"]) assert.equal(strings.test(bad), false, bad);
  const any = Grammar.fromJsonSchema({});
  for (const ok of ['{"a":[1,{"b":null}],"c":"d"}', '[]', '"x"', '-1.5e3', 'true', 'null']) assert.equal(any.test(ok), true, ok);
  const compact = new Grammar(jsonSchemaToGbnf(SCHEMAS.person, { whitespace: 'none' }));
  assert.equal(compact.test('{"name":"Ann","age":31}'), true);
  assert.equal(compact.test('{"name": "Ann","age":31}'), false);
});

test('unsupported or contradictory schemas are INVALID_GRAMMAR naming the place', () => {
  const bad: [unknown, RegExp][] = [
    [{ type: 'string', pattern: '^a+$' }, /"pattern" is not supported/],
    [{ not: { type: 'string' } }, /"not" is not supported/],
    [{ type: 'array', uniqueItems: true }, /"uniqueItems"/],
    [{ type: 'object', properties: { a: { type: 'number', multipleOf: 2 } } }, /at \/properties\/a: the keyword "multipleOf"/],
    [{ $ref: 'https://example.com/s.json' }, /only local references/],
    [{ $ref: '#/$defs/missing' }, /is not defined/],
    [{ type: 'integer', minimum: 5, maximum: 4 }, /allow no value/],
    [{ type: 'string', minLength: 3, maxLength: 2 }, /maxLength is below minLength/],
    [{ type: 'array', minItems: 3, maxItems: 1 }, /allow no array/],
    [{ enum: [] }, /empty enum/],
    [{ type: 'frog' }, /unknown type/],
    [false, /expected a schema object/],
    ['object', /expected a schema object/],
    [{ type: 'object', properties: { a: false } }, /false allows no value/],
  ];
  for (const [schema, pattern] of bad) {
    assert.throws(() => jsonSchemaToGbnf(schema), (e: unknown) => isAglmError(e, 'INVALID_GRAMMAR') && pattern.test((e as Error).message), JSON.stringify(schema));
  }
  // annotations are fine
  assert.doesNotThrow(() => jsonSchemaToGbnf({ title: 't', description: 'd', $schema: 'x', type: 'object', properties: { a: { type: 'string', default: 'q', examples: ['z'] } } }));
});
