// Structured output end to end: for each of the 20 suite schemas, 50 outputs sampled at temperature 1 on stories260K
// with { jsonSchema } all parse and validate under ajv (draft 2020-12, with formats); a run cut by maxTokens is
// reported as such (stopReason 'maxTokens', its text not valid JSON for the schema) and counted, never passed off as
// valid. Also the OpenAI json_object shape ({ type: 'object' }).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { loadModel } from '../../lib/index.js';
import { defaultModelPath } from '../helpers/fixtures.js';
import { SCHEMAS } from './schemas.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const SAMPLES = 50;
const MAX_TOKENS = 400;

test('20 schemas x 50 samples at temperature 1: every complete output parses and validates; cut runs reported as cut', { timeout: 20 * 60_000 }, async (t) => {
  const model = await loadModel(defaultModelPath);
  t.after(() => model.dispose());
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  assert.equal(Object.keys(SCHEMAS).length, 20);
  let complete = 0;
  let cut = 0;
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const validate = ajv.compile(schema);
    let cutHere = 0;
    for (let i = 0; i < SAMPLES; i++) {
      const out = await model.complete('Once upon a time', { jsonSchema: schema, temperature: 1, seed: 1000 + i, maxTokens: MAX_TOKENS });
      if (out.stopReason === 'maxTokens') {
        cutHere++;
        let value: unknown;
        let parsed = true;
        try {
          value = JSON.parse(out.text);
        } catch {
          parsed = false;
        }
        assert.ok(!parsed || !validate(value), `${name} #${i}: a cut run's text validates: ${out.text}`);
        continue;
      }
      assert.equal(out.stopReason, 'eos', `${name} #${i}`);
      let value: unknown;
      assert.doesNotThrow(() => (value = JSON.parse(out.text)), `${name} #${i}: not JSON: ${out.text}`);
      assert.ok(validate(value), `${name} #${i}: ${out.text}\n${ajv.errorsText(validate.errors)}`);
      complete++;
    }
    cut += cutHere;
    t.diagnostic(`${name}: ${SAMPLES - cutHere}/${SAMPLES} valid, ${cutHere} cut by maxTokens ${MAX_TOKENS}`);
    assert.ok(cutHere <= SAMPLES / 10, `${name}: ${cutHere} of ${SAMPLES} runs cut by maxTokens`);
  }
  t.diagnostic(`${complete} valid outputs, ${cut} cut by maxTokens, of ${20 * SAMPLES}`);
});

test('json_object mode ({ type: "object" }): outputs are JSON objects', async (t) => {
  const model = await loadModel(defaultModelPath);
  t.after(() => model.dispose());
  for (let i = 0; i < 10; i++) {
    const out = await model.complete('Once upon a time', { jsonSchema: { type: 'object' }, temperature: 1, seed: i, maxTokens: MAX_TOKENS });
    if (out.stopReason === 'maxTokens') continue;
    const v = JSON.parse(out.text);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), out.text);
  }
});
