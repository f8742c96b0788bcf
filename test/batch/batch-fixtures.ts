// A batch input of chat, completion and embedding requests plus invalid lines, and what each line's result must be:
// generations as the library produces them for that request alone (model.complete, one ChatSession turn), embeddings
// as model.embed, refusals as the HTTP server words them.
import assert from 'node:assert/strict';
import type { Model } from '../../lib/index.js';
import type { BatchResultLine } from '../../lib/batch/index.js';

const STARTS = [
  'Once upon a time',
  'Tim had a red ball.',
  'The cat sat on the mat',
  'Lily went to the park',
  'One day, a little bird',
  'Sam and Mia were friends.',
  'The sun was hot',
  'A big dog ran',
  'Mom said',
  'There was a tree',
  'Ben liked to play',
  'The boat',
];
const SYSTEMS = ['You are a story teller.', 'Tell short stories.'];

export type Expectation =
  | { kind: 'completion'; prompt: string; maxTokens: number }
  | { kind: 'chat'; system?: string; user: string; maxTokens: number }
  | { kind: 'embedding'; inputs: string[] }
  | { kind: 'status'; status: number; code: string; param: string | null }
  | { kind: 'line'; code: string; param: string | null };

export interface BatchCase {
  /** 1-based input line. */
  line: number;
  customId: string | null;
  text: string;
  expect: Expectation;
}

const json = (o: unknown) => JSON.stringify(o);

/** `n` input lines (n >= 150): every 20th an embedding, nine invalid ones at fixed lines, the rest chat/completions. */
export function batchCases(n = 200): BatchCase[] {
  const cases: BatchCase[] = [];
  const invalid: Record<number, (line: number) => BatchCase> = {
    17: (line) => ({ line, customId: null, text: 'this is not json {', expect: { kind: 'line', code: 'invalid_json_line', param: null } }),
    33: (line) => ({ line, customId: null, text: '[1, 2, 3]', expect: { kind: 'line', code: 'invalid_json_line', param: null } }),
    49: (line) => ({
      line,
      customId: null,
      text: json({ method: 'POST', url: '/v1/completions', body: { prompt: 'x' } }),
      expect: { kind: 'line', code: 'missing_required_parameter', param: 'custom_id' },
    }),
    65: (line) => ({
      line,
      customId: 'bad-url',
      text: json({ custom_id: 'bad-url', method: 'POST', url: '/v1/images/generations', body: { prompt: 'x' } }),
      expect: { kind: 'line', code: 'invalid_url', param: 'url' },
    }),
    81: (line) => ({
      line,
      customId: 'bad-method',
      text: json({ custom_id: 'bad-method', method: 'GET', url: '/v1/completions', body: { prompt: 'x' } }),
      expect: { kind: 'line', code: 'invalid_method', param: 'method' },
    }),
    97: (line) => ({
      line,
      customId: 'bad-temperature',
      text: json({ custom_id: 'bad-temperature', method: 'POST', url: '/v1/completions', body: { prompt: 'x', temperature: 5 } }),
      expect: { kind: 'status', status: 400, code: 'invalid_type', param: 'temperature' },
    }),
    113: (line) => ({
      line,
      customId: 'no-messages',
      text: json({ custom_id: 'no-messages', method: 'POST', url: '/v1/chat/completions', body: { messages: [] } }),
      expect: { kind: 'status', status: 400, code: 'invalid_type', param: 'messages' },
    }),
    129: (line) => ({
      line,
      customId: 'other-model',
      text: json({ custom_id: 'other-model', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] } }),
      expect: { kind: 'status', status: 404, code: 'model_not_found', param: 'model' },
    }),
    145: (line) => ({
      line,
      customId: 'streamed',
      text: json({ custom_id: 'streamed', method: 'POST', url: '/v1/completions', body: { prompt: 'x', stream: true } }),
      expect: { kind: 'status', status: 400, code: 'unsupported_parameter', param: 'stream' },
    }),
  };
  for (let line = 1; line <= n; line++) {
    if (invalid[line]) {
      cases.push(invalid[line](line));
      continue;
    }
    const id = `req-${line}`;
    const start = `${STARTS[line % STARTS.length]}${line % 5 === 0 ? '' : ` ${line}`}`;
    const maxTokens = 16 + (line % 17);
    if (line % 20 === 10) {
      const inputs = line % 40 === 10 ? [start] : [start, STARTS[(line + 3) % STARTS.length]];
      cases.push({
        line,
        customId: id,
        text: json({ custom_id: id, method: 'POST', url: '/v1/embeddings', body: { input: inputs.length === 1 ? inputs[0] : inputs } }),
        expect: { kind: 'embedding', inputs },
      });
    } else if (line % 2 === 1) {
      cases.push({
        line,
        customId: id,
        text: json({ custom_id: id, method: 'POST', url: '/v1/completions', body: { model: 'stories260K', prompt: start, temperature: 0, max_tokens: maxTokens } }),
        expect: { kind: 'completion', prompt: start, maxTokens },
      });
    } else {
      const system = line % 3 === 0 ? SYSTEMS[line % 2] : undefined;
      const messages = [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: start }];
      cases.push({
        line,
        customId: id,
        text: json({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { messages, temperature: 0, max_tokens: maxTokens } }),
        expect: { kind: 'chat', system, user: start, maxTokens },
      });
    }
  }
  return cases;
}

/** The key a result is found by: its custom_id, or its line for a line without one. */
export function resultKey(r: BatchResultLine): string {
  return r.custom_id ?? `line ${r.error?.line}`;
}

export function caseKey(c: BatchCase): string {
  return c.customId ?? `line ${c.line}`;
}

type Reference = { text: string; finish: string; promptTokens: number; completionTokens: number } | { vectors: number[][]; promptTokens: number };

/** Each request alone through the library's own single-request API. */
export async function references(model: Model, cases: BatchCase[]): Promise<Map<string, Reference>> {
  const out = new Map<string, Reference>();
  const finish = (r: string) => (r === 'eos' || r === 'stop' ? 'stop' : 'length');
  for (const c of cases) {
    const e = c.expect;
    if (e.kind === 'completion') {
      const r = await model.complete(e.prompt, { maxTokens: e.maxTokens, temperature: 0 });
      out.set(caseKey(c), { text: r.text, finish: finish(r.stopReason), promptTokens: r.timings.promptTokens, completionTokens: r.tokens.length });
    } else if (e.kind === 'chat') {
      await using session = model.createChatSession(e.system === undefined ? {} : { systemPrompt: e.system });
      const text = await session.prompt(e.user, { maxTokens: e.maxTokens, temperature: 0 });
      const s = session.lastTurnStats!;
      out.set(caseKey(c), { text, finish: finish(s.stopReason), promptTokens: s.promptTokens, completionTokens: s.generatedTokens });
    } else if (e.kind === 'embedding') {
      const vectors = (await model.embed(e.inputs)).map((v) => Array.from(v));
      const promptTokens = e.inputs.reduce((n, t) => n + model.tokenize(t).length, 0);
      out.set(caseKey(c), { vectors, promptTokens });
    }
  }
  return out;
}

/** Asserts a result line is what its case must give (the reference for generations and embeddings). */
export function checkResult(r: BatchResultLine, c: BatchCase, ref: Reference | undefined): void {
  const where = `${caseKey(c)} (line ${c.line})`;
  assert.match(r.id, /^batch_req_[A-Za-z0-9]{24}$/, where);
  assert.equal(r.custom_id, c.customId, where);
  const e = c.expect;
  if (e.kind === 'line') {
    assert.equal(r.response, null, where);
    assert.equal(r.error?.code, e.code, where);
    assert.equal(r.error?.param, e.param, where);
    assert.equal(r.error?.line, c.line, where);
    assert.equal(typeof r.error?.message, 'string', where);
    return;
  }
  assert.equal(r.error, null, where);
  assert.ok(r.response, where);
  assert.match(r.response.request_id, /^[0-9a-f]{32}$/, where);
  const body = r.response.body as Record<string, any>;
  if (e.kind === 'status') {
    assert.equal(r.response.status_code, e.status, `${where}: ${JSON.stringify(body)}`);
    assert.equal(body.error.code, e.code, where);
    assert.equal(body.error.param, e.param, where);
    return;
  }
  assert.equal(r.response.status_code, 200, `${where}: ${JSON.stringify(body)}`);
  assert.ok(ref, where);
  if (e.kind === 'embedding') {
    const want = ref as { vectors: number[][]; promptTokens: number };
    assert.equal(body.object, 'list', where);
    assert.deepEqual(
      body.data.map((d: { embedding: number[] }) => d.embedding),
      want.vectors,
      where,
    );
    assert.equal(body.usage.prompt_tokens, want.promptTokens, where);
    return;
  }
  const want = ref as { text: string; finish: string; promptTokens: number; completionTokens: number };
  assert.equal(body.object, e.kind === 'chat' ? 'chat.completion' : 'text_completion', where);
  assert.equal(body.model, 'stories260K', where);
  assert.equal(body.choices.length, 1, where);
  const choice = body.choices[0];
  assert.equal(e.kind === 'chat' ? choice.message.content : choice.text, want.text, where);
  assert.equal(choice.finish_reason, want.finish, where);
  assert.equal(body.usage.prompt_tokens, want.promptTokens, where);
  assert.equal(body.usage.completion_tokens, want.completionTokens, where);
}
