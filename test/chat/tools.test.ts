// Tool calls in the library: each style's replies parsed (calls, content before a call, malformed or unknown calls
// left as text), the streaming filter showing exactly the reply's text and nothing of a call whatever the chunking,
// the forced-call grammar's outputs parsing into calls whose arguments validate against the tool's schema (ajv), the
// built-in templates rendering tools, calls and results in each family's format, and a chat session's round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { loadModel } from '../../lib/index.js';
import { Grammar } from '../../lib/grammar/index.js';
import { parseToolCalls, ToolCallFilter, toolCallGrammar, checkTools, checkToolChoice, type ChatTool, type ToolCallStyle } from '../../lib/chat/tools.js';
import { isAglmError } from '../../lib/errors.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinChatTemplate, ChatTemplate } from '../../lib/chat/index.js';
import { FIXTURE_DIR, loadTokenizer } from '../tokenizer/load.js';
import { repoRoot } from '../helpers/fixtures.js';

const TOOLS: ChatTool[] = checkTools([
  { type: 'function', function: { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 16 }, unit: { enum: ['c', 'f'] } }, required: ['city'] } } },
  { type: 'function', function: { name: 'tap', parameters: { type: 'object', properties: { x: { type: 'integer', minimum: 0, maximum: 999 }, y: { type: 'integer', minimum: 0, maximum: 999 } }, required: ['x', 'y'] } } },
  { name: 'back' },
]);

const CALL_TEXT: Record<ToolCallStyle, string> = {
  hermes: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>',
  llama3: '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "c"}}',
  glm4: 'get_weather\n{"city": "Paris", "unit": "c"}',
};

test('each style parses its call; plain text, unknown functions and malformed JSON stay text', () => {
  for (const style of ['hermes', 'llama3', 'glm4'] as const) {
    const p = parseToolCalls(style, CALL_TEXT[style], TOOLS);
    assert.equal(p.calls.length, 1, style);
    assert.equal(p.calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(p.calls[0].function.arguments), { city: 'Paris', unit: 'c' });
    assert.match(p.calls[0].id, /^call_/);
    assert.equal(p.content, '');
    for (const text of ['It is sunny in Paris.', CALL_TEXT[style].replace('get_weather', 'launch_rocket'), CALL_TEXT[style].replace('"Paris"', 'Paris')]) {
      const q = parseToolCalls(style, text, TOOLS);
      assert.equal(q.calls.length, 0, `${style}: ${text}`);
      assert.equal(q.content, text);
    }
  }
  // Hermes: text before the calls is the content; several calls; a last call cut before its closing tag.
  const two = parseToolCalls('hermes', 'Let me check.\n<tool_call>\n{"name": "tap", "arguments": {"x": 1, "y": 2}}\n</tool_call>\n<tool_call>\n{"name": "back", "arguments": {}}', TOOLS);
  assert.equal(two.content, 'Let me check.');
  assert.deepEqual(two.calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]), [['tap', { x: 1, y: 2 }], ['back', {}]]);
  // Llama 3: <|python_tag|> and several calls separated by ';'; arguments given as a JSON string.
  const l3 = parseToolCalls('llama3', '<|python_tag|>{"name": "tap", "parameters": {"x": 5, "y": 6}}; {"name": "back", "parameters": "{}"}', TOOLS);
  assert.deepEqual(l3.calls.map((c) => c.function.name), ['tap', 'back']);
  assert.equal(l3.calls[1].function.arguments, '{}');
  // GLM-4: a plain reply starts with its newline.
  assert.equal(parseToolCalls('glm4', '\nget_weather\n{"city": "x"}', TOOLS).calls.length, 0);
});

test('the streaming filter shows the reply text, never a call, for any chunking', () => {
  const cases: [ToolCallStyle, string, string][] = [
    ['hermes', 'Let me look <tool_call> up.', 'Let me look <tool_call> up.'], // an unclosed tag that is no call: shown at the end
    ['hermes', `Checking.\n${CALL_TEXT.hermes}`, 'Checking.\n'],
    ['hermes', 'a < b and <tool', 'a < b and <tool'],
    ['llama3', CALL_TEXT.llama3, ''],
    ['llama3', '  The answer is {42}.', '  The answer is {42}.'],
    ['llama3', '{not json at all', '{not json at all'],
    ['glm4', CALL_TEXT.glm4, ''],
    ['glm4', '\nget_weather is a tool.', '\nget_weather is a tool.'],
    ['glm4', 'get_weathe', 'get_weathe'],
    ['glm4', 'tapping\nnow', 'tapping\nnow'],
  ];
  for (const [style, text, shown] of cases) {
    for (const size of [1, 2, 3, 7, 1000]) {
      const f = new ToolCallFilter(style, TOOLS);
      let out = '';
      for (let i = 0; i < text.length; i += size) out += f.push(text.slice(i, i + size));
      const end = f.finish();
      out += end.rest;
      assert.equal(out, end.calls.length > 0 ? shown : text, `${style} ${JSON.stringify(text)} chunk ${size}`);
      assert.equal(end.calls.length > 0, shown !== text, `${style} ${JSON.stringify(text)}: a call`);
    }
  }
});

test('forced-call grammars: every sentence is a call that parses, with arguments valid under the tool schema', () => {
  const ajv = new Ajv2020({ strict: false });
  for (const style of ['hermes', 'llama3', 'glm4'] as const) {
    const g = new Grammar(toolCallGrammar(style, TOOLS));
    assert.equal(g.test(CALL_TEXT[style].replace(', "unit": "c"', '').replace(/: /g, ':').replace(/, /g, ',').replace('{"name":"get_weather","arguments":', '{"name": "get_weather", "arguments": ').replace('{"name":"get_weather","parameters":', '{"name": "get_weather", "parameters": ')), true, style);
    const only = new Grammar(toolCallGrammar(style, TOOLS, 'tap'));
    const tap = style === 'hermes' ? '<tool_call>\n{"name": "tap", "arguments": {"x":1,"y":999}}\n</tool_call>' : style === 'llama3' ? '{"name": "tap", "parameters": {"x":1,"y":999}}' : 'tap\n{"x":1,"y":999}';
    assert.equal(only.test(tap), true, `${style} ${tap}`);
    assert.equal(only.test(tap.replace('999', '1000')), false);
    assert.equal(only.test(CALL_TEXT[style]), false, 'only the named tool');
    const p = parseToolCalls(style, tap, TOOLS);
    assert.ok(ajv.validate(TOOLS[1].function.parameters!, JSON.parse(p.calls[0].function.arguments)));
  }
});

test('tool definitions and choices are checked', () => {
  const bad = (f: () => unknown) => assert.throws(f, (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT'));
  bad(() => checkTools('x'));
  bad(() => checkTools([{ type: 'function', function: { name: 'has space' } }]));
  bad(() => checkTools([{ type: 'function', function: { name: 'a' } }, { type: 'function', function: { name: 'a' } }]));
  bad(() => checkTools([{ type: 'function', function: { name: 'a', parameters: 'object' } }]));
  bad(() => checkTools([{ type: 'retrieval' }]));
  bad(() => checkToolChoice({ type: 'function', function: { name: 'nope' } }, TOOLS));
  bad(() => checkToolChoice('sometimes', TOOLS));
  assert.equal(checkToolChoice(undefined, TOOLS), 'auto');
  assert.equal(checkToolChoice(undefined, []), 'none');
});

/** JSON as Python's json.dumps writes it (", " and ": "), which Jinja's tojson follows. */
function pyJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

test('built-in templates render tools, calls and results in their family format', async () => {
  const stories = await loadModel();
  const llama3 = await loadTokenizer(join(FIXTURE_DIR, 'ggml-vocab-llama-bpe.gguf'));
  try {
    const messages = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', toolCallId: 'call_1', content: '{"temp":21}' },
    ];
    const tools = [TOOLS[0]];
    const tool = tools[0];
    const glm = new ChatTemplate(builtinChatTemplate('glm4'), 'glm4', stories.tokenizer).render(messages, { tools });
    assert.equal(
      glm,
      '[gMASK]<sop><|system|>\n# 可用工具\n\n## get_weather\n\n' + JSON.stringify(tool.function, null, 4) + '\n在调用上述函数时，请使用 Json 格式表示调用的参数。' +
        '<|user|>\nWeather in Paris?<|assistant|>get_weather\n{"city": "Paris"}<|observation|>\n{"temp":21}<|assistant|>',
    );
    const l3 = new ChatTemplate(builtinChatTemplate('llama3'), 'llama3', llama3).render(messages, { tools });
    assert.equal(
      l3,
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n\n<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper ' +
        'arguments that best answers the given prompt.\n\nRespond in the format {"name": function name, "parameters": dictionary of argument name ' +
        'and its value}. Do not use variables.\n\n' + JSON.stringify(tool, null, 4) + '\n\nWeather in Paris?<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>' +
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"temp":21}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const chatml = new ChatTemplate(builtinChatTemplate('chatml'), 'chatml', stories.tokenizer).render(messages, { tools });
    assert.equal(
      chatml,
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function ' +
        'signatures within <tools></tools> XML tags:\n<tools>\n' + pyJson(tool) + '\n</tools>\n\nFor each function call, return a json object ' +
        'with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": ' +
        '<args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n' +
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{"temp":21}\n' +
        '</tool_response><|im_end|>\n<|im_start|>assistant\n',
    );
    // Without tools the built-ins render as before (test/chat/templates.test.ts compares them with the official ones).
    assert.equal(new ChatTemplate(builtinChatTemplate('chatml'), 'chatml', stories.tokenizer).render([messages[0]]), '<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n');
    // A template without tools of its own (Llama 2, stories260K's) gets the Hermes text in its system message.
    const l2 = stories.applyChatTemplate(messages, { tools });
    assert.ok(l2.includes('<<SYS>>\n# Tools') && l2.includes('<tool_call>\n{"name":"get_weather","arguments":{"city":"Paris"}}\n</tool_call>') && l2.includes('<tool_response>\n{"temp":21}\n</tool_response>'), l2);
    // GLM-4's own template reads the tools from the first message.
    const official = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/chat-templates/official-templates.json'), 'utf8'))['glm-4-9b-chat'].template;
    const own = new ChatTemplate(official, 'file', stories.tokenizer);
    assert.equal(own.toolStyle, 'glm4');
    const rendered = own.render(messages, { tools });
    assert.ok(rendered.startsWith('[gMASK]<sop><|system|>\n你是一个名为 ChatGLM 的人工智能助手'), rendered);
    assert.ok(rendered.includes('## get_weather') && rendered.includes('<|assistant|>get_weather\n{"city":"Paris"}<|observation|>\n{"temp":21}<|assistant|>'), rendered);
  } finally {
    stories.dispose();
  }
});

test('a chat session round trip: a required call, the tool result as a message, a final answer; history and stats', async () => {
  await using m = await loadModel();
  const ajv = new Ajv2020({ strict: false });
  await using chat = m.createChatSession({ tools: TOOLS });
  const first = await chat.prompt('What is the weather in Paris?', { toolChoice: { type: 'function', function: { name: 'get_weather' } }, temperature: 0, maxTokens: 120 });
  const stats = chat.lastTurnStats!;
  assert.equal(first, '');
  assert.equal(stats.toolCalls.length, 1);
  const call = stats.toolCalls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.ok(ajv.validate(TOOLS[0].function.parameters!, JSON.parse(call.function.arguments)), call.function.arguments);
  assert.deepEqual(chat.history.at(-1), { role: 'assistant', content: '', toolCalls: [call] });
  const answer = await chat.prompt({ role: 'tool', toolCallId: call.id, content: '{"temp": 21}' }, { temperature: 0, maxTokens: 24 });
  assert.equal(chat.lastTurnStats!.toolCalls.length, 0);
  assert.equal(chat.history.at(-2)!.role, 'tool');
  assert.equal(chat.history.at(-1)!.content, answer);
  // A fresh session given the same messages at once replies the same (the prompt is the same rendering).
  await using again = m.createChatSession({ tools: TOOLS });
  const same = await again.prompt(chat.history.slice(0, -1), { temperature: 0, maxTokens: 24 });
  assert.equal(same, answer);
  // tool choice with a grammar of one's own is refused; 'none' offers no tools (no Hermes text in the prompt).
  assert.throws(() => chat.stream('x', { toolChoice: 'required', grammar: 'root ::= "a"\n' }), (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT'));
  await using plain = m.createChatSession({ tools: TOOLS });
  await plain.prompt('Hi', { toolChoice: 'none', maxTokens: 4, temperature: 0 });
  assert.ok(plain.lastTurnStats!.promptTokens < stats.promptTokens / 2);
});
