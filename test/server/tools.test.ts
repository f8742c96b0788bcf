// Tool calls through the server with the official `openai` client, on random-weight models with a GLM-4 style
// vocabulary (glm4 architecture, the GLM-4 template) and Llama 3's vocabulary (the Llama 3 template): calls forced by
// tool_choice (required, or a named function) come back as tool_calls whose arguments validate against the tool's
// schema and equal the library's, streamed as deltas and not; scripted model outputs (the reply held to a fixed text
// with llama.cpp's `grammar` field) are parsed into calls or kept as text; the round trip (call, tool result, final
// answer) equals the library's chat; bad tool requests are 400s.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { GgmlType, loadModel, readGguf, type Model } from '../../lib/index.js';
import { gbnfLiteral } from '../../lib/grammar/index.js';
import { writeRandomModel } from '../../lib/tools/random-model.js';
import { FIXTURE_DIR } from '../tokenizer/load.js';
import { tempDir } from '../helpers/fixtures.js';
import { assertErrorShape, listen, postJson, type Listening } from '../helpers/server.js';

const TOOLS = [
  {
    type: 'function' as const,
    function: { name: 'get_weather', description: 'Current weather in a city', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 16 }, unit: { enum: ['c', 'f'] } }, required: ['city'] } },
  },
  { type: 'function' as const, function: { name: 'tap', parameters: { type: 'object', properties: { x: { type: 'integer', minimum: 0, maximum: 999 }, y: { type: 'integer', minimum: 0, maximum: 999 } }, required: ['x', 'y'] } } },
];
const SHAPE = { embeddingLength: 64, blockCount: 1, headCount: 4, headCountKv: 2, feedForwardLength: 128, vocabSize: 0, contextLength: 4096 };

interface Family {
  name: 'glm4' | 'llama3';
  model: Model;
  server: Listening;
  client: OpenAI;
  /** A call as the family's template has the model write it. */
  script: string;
}
const families: Family[] = [];
const ajv = new Ajv2020({ strict: false });

before(async () => {
  const dir = tempDir({ after }, 'aglm-tools-');
  const gpt2 = await readGguf(join(FIXTURE_DIR, 'ggml-vocab-gpt-2.gguf'));
  const llama3 = await readGguf(join(FIXTURE_DIR, 'ggml-vocab-llama-bpe.gguf'));
  const glmPath = join(dir, 'glm4.gguf');
  const l3Path = join(dir, 'llama3.gguf');
  await writeRandomModel(glmPath, SHAPE, {
    arch: 'glm4',
    type: GgmlType.F16,
    vocab: { entries: gpt2.metadata.entries(), addControlTokens: ['[gMASK]', '<sop>', '<|system|>', '<|user|>', '<|assistant|>', '<|observation|>'] },
  });
  await writeRandomModel(l3Path, SHAPE, { arch: 'llama', type: GgmlType.F16, vocab: { entries: llama3.metadata.entries() } });
  for (const [name, path, script] of [
    ['glm4', glmPath, 'get_weather\n{"city": "Paris", "unit": "c"}'],
    ['llama3', l3Path, '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "c"}}'],
  ] as const) {
    const model = await loadModel(path);
    assert.equal(model.chatTemplate.name, name);
    const server = await listen(model, { parallel: 2 });
    families.push({ name, model, server, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60_000 }), script });
  }
});

after(async () => {
  for (const f of families) {
    await f.server.close();
    f.model.dispose();
  }
});

const USER: OpenAI.Chat.ChatCompletionMessageParam = { role: 'user', content: 'What is the weather in Paris?' };

/** The library's reply to `messages` in a fresh chat session (the same rendering the server tokenizes). */
async function libReply(model: Model, messages: { role: string; content: string; toolCalls?: unknown[]; toolCallId?: string }[], options: object) {
  await using chat = model.createChatSession({ tools: TOOLS });
  const text = await chat.prompt(messages as never, { temperature: 0, ...options });
  return { text, calls: chat.lastTurnStats!.toolCalls, stopReason: chat.lastTurnStats!.stopReason };
}

async function streamed(client: OpenAI, params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  let content = '';
  const calls: { id?: string; name?: string; arguments: string }[] = [];
  const finishes: string[] = [];
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    content += c.delta.content ?? '';
    for (const t of c.delta.tool_calls ?? []) {
      calls[t.index] ??= { arguments: '' };
      if (t.id) calls[t.index].id = t.id;
      if (t.function?.name) calls[t.index].name = t.function.name;
      calls[t.index].arguments += t.function?.arguments ?? '';
    }
    if (c.finish_reason) finishes.push(c.finish_reason);
  }
  return { content, calls, finishes };
}

test('tool_choice required / named: tool_calls that validate and equal the library, streamed as deltas and not', async () => {
  for (const f of families) {
    for (const choice of ['required', { type: 'function', function: { name: 'tap' } }] as const) {
      const want = await libReply(f.model, [{ role: 'user', content: USER.content as string }], { toolChoice: choice, maxTokens: 120 });
      assert.equal(want.calls.length, 1);
      const params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = { model: undefined as never, messages: [USER], tools: TOOLS, tool_choice: choice, temperature: 0, max_tokens: 120 };
      const r: OpenAI.Chat.ChatCompletion = await f.client.chat.completions.create(params);
      const c: OpenAI.Chat.ChatCompletion.Choice = r.choices[0];
      const label = `${f.name} ${JSON.stringify(choice)}`;
      assert.equal(c.finish_reason, 'tool_calls', label);
      assert.equal(c.message.content, null, label);
      assert.equal(c.message.tool_calls!.length, 1);
      const call = c.message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
      assert.match(call.id, /^call_/);
      assert.equal(call.function.name, want.calls[0].function.name, label);
      assert.equal(call.function.arguments, want.calls[0].function.arguments, label);
      if (typeof choice === 'object') assert.equal(call.function.name, 'tap');
      const tool = TOOLS.find((t) => t.function.name === call.function.name)!;
      assert.ok(ajv.validate(tool.function.parameters, JSON.parse(call.function.arguments)), `${label}: ${call.function.arguments}`);
      const s = await streamed(f.client, params);
      assert.equal(s.content, '', label);
      assert.deepEqual(s.finishes, ['tool_calls']);
      assert.equal(s.calls.length, 1);
      assert.match(s.calls[0].id!, /^call_/);
      assert.equal(s.calls[0].name, call.function.name);
      assert.equal(s.calls[0].arguments, call.function.arguments);
    }
  }
});

test('scripted outputs (tool_choice auto): a call in the template\'s syntax becomes tool_calls; other text stays content', async () => {
  for (const f of families) {
    const scripts = [
      { text: f.script, call: true },
      { text: 'It is sunny in Paris.', call: false },
      { text: f.script.replace('get_weather', 'launch_rocket'), call: false }, // not one of the tools
    ];
    for (const sc of scripts) {
      const params = { model: undefined as never, messages: [USER], tools: TOOLS, temperature: 0, max_tokens: 200, grammar: `root ::= ${gbnfLiteral(sc.text)}\n` } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
      const r: OpenAI.Chat.ChatCompletion = await f.client.chat.completions.create(params);
      const c: OpenAI.Chat.ChatCompletion.Choice = r.choices[0];
      const label = `${f.name} ${JSON.stringify(sc.text)}`;
      const s = await streamed(f.client, params);
      if (sc.call) {
        assert.equal(c.finish_reason, 'tool_calls', label);
        const call = c.message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', unit: 'c' });
        assert.deepEqual([s.content, s.calls.map((x) => [x.name, JSON.parse(x.arguments)]), s.finishes], ['', [['get_weather', { city: 'Paris', unit: 'c' }]], ['tool_calls']], label);
      } else {
        assert.equal(c.finish_reason, 'stop', label);
        assert.equal(c.message.tool_calls, undefined);
        // GLM-4's plain replies start with the newline the template's reply lead strips.
        assert.equal(c.message.content, sc.text, label);
        assert.deepEqual([s.content, s.calls, s.finishes], [sc.text, [], ['stop']], label);
      }
    }
  }
});

test('the round trip: a call, the tool result, a final answer equal to the library\'s chat, streamed and not', async () => {
  for (const f of families) {
    const first = await f.client.chat.completions.create({ model: undefined as never, messages: [USER], tools: TOOLS, tool_choice: 'required', temperature: 0, max_tokens: 120 });
    const assistant = first.choices[0].message;
    const call = assistant.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [USER, assistant as OpenAI.Chat.ChatCompletionAssistantMessageParam, { role: 'tool', tool_call_id: call.id, content: '{"temp": 21, "sky": "clear"}' }];
    const want = await libReply(
      f.model,
      [
        { role: 'user', content: USER.content as string },
        { role: 'assistant', content: '', toolCalls: [{ id: call.id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } }] },
        { role: 'tool', toolCallId: call.id, content: '{"temp": 21, "sky": "clear"}' },
      ],
      { maxTokens: 24 },
    );
    const params = { model: undefined as never, messages, tools: TOOLS, temperature: 0, max_tokens: 24 };
    const r = await f.client.chat.completions.create(params);
    if (want.calls.length === 0) {
      assert.equal(r.choices[0].message.content, want.text, f.name);
      assert.equal((await streamed(f.client, params)).content, want.text, `${f.name} streamed`);
    } else {
      assert.deepEqual(r.choices[0].message.tool_calls!.map((c) => (c as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function.arguments), want.calls.map((c) => c.function.arguments));
    }
  }
});

test('bad tool requests are 400s in OpenAI\'s shape', async () => {
  const url = families[0].server.url;
  const cases: [Record<string, unknown>, string][] = [
    [{ tools: 'get_weather' }, 'tools'],
    [{ tools: [{ type: 'function', function: { name: 'has space' } }] }, 'tools'],
    [{ tools: [{ type: 'function', function: { name: 'a', parameters: 'object' } }] }, 'tools'],
    [{ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice'],
    [{ tools: TOOLS, tool_choice: 'sometimes' }, 'tool_choice'],
    [{ tool_choice: 'required' }, 'tool_choice'],
    [{ tools: TOOLS, tool_choice: 'required', response_format: { type: 'json_object' } }, 'tool_choice'],
    [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string', pattern: 'x' } } }], tool_choice: 'required' }, 'tools'],
    [{ tools: TOOLS, messages: [{ role: 'assistant', content: null, tool_calls: 'x' }] }, 'messages[0].tool_calls'],
  ];
  for (const [extra, param] of cases) {
    const r = await postJson(url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.equal(assertErrorShape(r.json).param, param, JSON.stringify(extra));
  }
  const ok = await postJson(url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, tools: TOOLS, tool_choice: 'none' });
  assert.equal(ok.status, 200);
});
