// Structured output through the server: the official `openai` client's response_format (json_schema, json_object)
// gets at temperature 0 exactly the library's constrained output (a one-turn chat session with { jsonSchema }),
// streamed and not, and it validates; llama.cpp's `grammar` and `json_schema` fields on /v1/completions equal
// sequence.complete with the same grammar; bad grammars and schemas are 400 invalid_grammar in OpenAI's shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { loadModel, type Model } from '../../lib/index.js';
import { assertErrorShape, listen, postJson, type Listening } from '../helpers/server.js';
import { SCHEMAS } from '../grammar/schemas.js';

let model: Model;
let server: Listening;
let client: OpenAI;

before(async () => {
  model = await loadModel();
  server = await listen(model, { parallel: 4 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 30_000 });
});

after(async () => {
  await server?.close();
  model?.dispose();
});

async function libChat(user: string, jsonSchema: unknown, maxTokens: number): Promise<string> {
  await using chat = model.createChatSession();
  return await chat.prompt(user, { jsonSchema, maxTokens, temperature: 0 });
}

test('response_format json_schema through the openai client equals the library and validates, streamed and not', async () => {
  const ajv = new Ajv2020({ strict: false });
  for (const name of ['person', 'phone-action', 'shapes', 'list-of-objects']) {
    const schema = SCHEMAS[name];
    const want = await libChat('Describe it', schema, 300);
    const params = {
      model: 'stories260K',
      messages: [{ role: 'user' as const, content: 'Describe it' }],
      max_tokens: 300,
      temperature: 0,
      response_format: { type: 'json_schema' as const, json_schema: { name, schema: schema as Record<string, unknown>, strict: true } },
    };
    const r = await client.chat.completions.create(params);
    assert.equal(r.choices[0].message.content, want, name);
    assert.equal(r.choices[0].finish_reason, 'stop', name);
    assert.ok(ajv.validate(schema, JSON.parse(want)), `${name}: ${want}`);
    const stream = await client.chat.completions.create({ ...params, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, want, `${name} streamed`);
  }
});

test('response_format json_object gives a JSON object', async () => {
  const r = await client.chat.completions.create({
    model: 'stories260K',
    messages: [{ role: 'user', content: 'Give me JSON' }],
    max_tokens: 400,
    temperature: 0,
    response_format: { type: 'json_object' },
  });
  assert.equal(r.choices[0].message.content, await libChat('Give me JSON', { type: 'object' }, 400));
  if (r.choices[0].finish_reason === 'stop') {
    const v = JSON.parse(r.choices[0].message.content!);
    assert.ok(v && typeof v === 'object' && !Array.isArray(v));
  }
});

test("llama.cpp's grammar and json_schema fields on /v1/completions equal sequence.complete with the same grammar", async () => {
  const gbnf = 'root ::= "do(action=\\"" ("Tap" | "Back") "\\")"\n';
  for (const [field, value, opts] of [
    ['grammar', gbnf, { grammar: gbnf }],
    ['json_schema', SCHEMAS.status, { jsonSchema: SCHEMAS.status }],
  ] as const) {
    await using ctx = model.createContext({ sequences: 1 });
    const want = await ctx.createSequence().complete('Once upon a time', { ...opts, temperature: 0, maxTokens: 200 });
    const r = await postJson(server.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 200, temperature: 0, [field]: value });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].text, want.text, field);
    assert.equal(r.json.choices[0].finish_reason, 'stop');
  }
});

test('bad grammars, schemas and response formats are 400s in OpenAI\'s shape; the server answers the next request', async () => {
  const cases: [Record<string, unknown>, string, string][] = [
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: 'a+' } } } }, 'response_format.json_schema.schema', 'invalid_grammar'],
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { $ref: '#/$defs/nope' } } } }, 'response_format.json_schema.schema', 'invalid_grammar'],
    [{ response_format: { type: 'json_schema' } }, 'response_format.json_schema', 'invalid_type'],
    [{ response_format: { type: 'xml' } }, 'response_format.type', 'invalid_type'],
    [{ response_format: 'json' }, 'response_format', 'invalid_type'],
    [{ grammar: 'root ::= missing\n' }, 'grammar', 'invalid_grammar'],
    [{ grammar: 'root ::= root "a"\n' }, 'grammar', 'invalid_grammar'],
    [{ grammar: 42 }, 'grammar', 'invalid_type'],
    [{ json_schema: 'object' }, 'json_schema', 'invalid_type'],
    [{ grammar: 'root ::= "a"\n', response_format: { type: 'json_object' } }, 'grammar', 'invalid_value'],
  ];
  for (const [extra, param, code] of cases) {
    const r = await postJson(server.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, ...extra });
    assert.equal(r.status, 400, JSON.stringify(extra));
    const e = assertErrorShape(r.json);
    assert.equal(e.param, param, JSON.stringify(extra));
    assert.equal(e.code, code, JSON.stringify(extra));
  }
  const ok = await postJson(server.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
  assert.equal(ok.status, 200);
});
