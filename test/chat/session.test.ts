// Chat sessions on stories260K (no chat template in the file: the built-in Llama 2 one): the second turn evaluates
// only what is new and replies exactly as a fresh evaluation of the whole conversation; streaming, abort (rollback or
// keep), context overflow, end-of-turn tokens, busy and dispose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AglmError, loadModel, type ChatTurnStats } from '../../lib/index.js';
import { generate } from '../../lib/model/generate.js';

const model = await loadModel();
test.after(() => model.dispose());

const SYSTEM = 'You are a story teller.';
const GREEDY = { temperature: 0, maxTokens: 40 } as const;

function code(c: string) {
  return (e: unknown) => {
    assert.ok(e instanceof AglmError, String(e));
    assert.equal(e.code, c, e.message);
    return true;
  };
}

/** Context tokens a turn leaves: its prompt and each reply token the model evaluated (all but a last unevaluated one). */
function leftInContext(s: ChatTurnStats): number {
  return s.promptTokens + s.generatedTokens - (s.stopReason === 'eos' ? 0 : 1);
}

test('a two-turn chat reuses the KV cache: turn 2 evaluates only the new tokens and equals a fresh evaluation', async () => {
  await using session = model.createChatSession({ systemPrompt: SYSTEM, threads: 1 });
  assert.equal(session.template.name, 'llama2');
  const reply1 = await session.prompt('Tell me a story about a cat.', GREEDY);
  const t1 = session.lastTurnStats!;
  assert.equal(t1.reusedTokens, 0);
  assert.equal(t1.evaluatedTokens, t1.promptTokens);
  assert.equal(session.contextTokens, leftInContext(t1));
  assert.ok(reply1.length > 0);

  const reply2 = await session.prompt('And then?', GREEDY);
  const t2 = session.lastTurnStats!;
  // Everything turn 1 left in the context is reused; only the closing of reply 1 and the new user turn are evaluated.
  assert.equal(t2.reusedTokens, leftInContext(t1));
  assert.equal(t2.evaluatedTokens, t2.promptTokens - t2.reusedTokens);
  const prompt2 = model.chatTemplate.tokenize([
    { role: 'system', content: SYSTEM },
    { role: 'user', content: 'Tell me a story about a cat.' },
    { role: 'assistant', content: reply1 },
    { role: 'user', content: 'And then?' },
  ]);
  assert.equal(t2.promptTokens, prompt2.length);
  const newTurn = model.chatTemplate.tokenize([{ role: 'user', content: 'And then?' }]).length; // <s>[INST] And then? [/INST]
  // The new part: the reply's last token if it was never evaluated, ' </s>' closing it, and the new user turn.
  assert.equal(t2.evaluatedTokens, (t1.stopReason === 'eos' ? 0 : 1) + 2 + newTurn);
  console.log(`# turn 1: ${t1.promptTokens} prompt tokens evaluated, ${t1.generatedTokens} generated (${t1.stopReason})`);
  console.log(`# turn 2: ${t2.promptTokens} prompt tokens, ${t2.reusedTokens} reused from the cache, ${t2.evaluatedTokens} evaluated`);

  // A fresh context evaluating the whole conversation at once gives the same greedy reply.
  const fresh = await model.complete(prompt2, GREEDY);
  assert.deepEqual(t2.tokens, fresh.tokens);
  assert.equal(reply2, fresh.text.replace(/^ /, ''));
  assert.deepEqual(session.history, [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: 'Tell me a story about a cat.' },
    { role: 'assistant', content: reply1 },
    { role: 'user', content: 'And then?' },
    { role: 'assistant', content: reply2 },
  ]);
});

test('stream() yields the reply in chunks that add up to what prompt() returns', async () => {
  await using a = model.createChatSession({ systemPrompt: SYSTEM, threads: 1 });
  await using b = model.createChatSession({ systemPrompt: SYSTEM, threads: 1 });
  const options = { temperature: 0.8, seed: 7, maxTokens: 30 };
  const chunks: string[] = [];
  for await (const chunk of a.stream('Once upon a time', options)) chunks.push(chunk);
  assert.ok(chunks.length > 1);
  assert.equal(chunks.join(''), await b.prompt('Once upon a time', options));
  assert.deepEqual(a.history, b.history);
  // Stop strings end the reply before them.
  await using c = model.createChatSession({ threads: 1 });
  const whole = await c.prompt('Hello', GREEDY);
  const word = whole.split(' ')[3];
  c.reset();
  const cut = await c.prompt('Hello', { ...GREEDY, stop: word });
  assert.equal(cut, whole.slice(0, whole.indexOf(word)));
  assert.equal(c.lastTurnStats!.stopReason, 'stop');
});

test('an aborted reply rolls the turn back by default; the session stays usable and keeps its cache', async () => {
  await using session = model.createChatSession({ systemPrompt: SYSTEM, threads: 1 });
  await session.prompt('Hello', GREEDY);
  const before = session.history;
  const stats = session.lastTurnStats;
  const ac = new AbortController();
  let n = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of session.stream('Tell me more', { temperature: 0, maxTokens: 1000, signal: ac.signal })) {
        if (++n === 3) ac.abort(new Error('enough'));
      }
    })(),
    (e: unknown) => code('ABORTED')(e) && (e as AglmError).cause instanceof Error,
  );
  assert.deepEqual(session.history, before);
  assert.deepEqual(session.lastTurnStats, stats);
  // The next turn reuses everything up to the end of the first reply at least.
  const reply = await session.prompt('Tell me more', GREEDY);
  assert.ok(reply.length > 0);
  assert.ok(session.lastTurnStats!.reusedTokens >= leftInContext(stats!), `${session.lastTurnStats!.reusedTokens}`);
  // An abort before the call starts rejects too and changes nothing.
  const history = session.history;
  await assert.rejects(session.prompt('x', { signal: AbortSignal.abort() }), code('ABORTED'));
  assert.deepEqual(session.history, history);
});

test("onAbort: 'keep' ends the reply where it stopped and records it; a stream's consumer stopping early does too", async () => {
  await using session = model.createChatSession({ threads: 1 });
  const ac = new AbortController();
  let seen = '';
  const chunks = session.stream('Hello', { temperature: 0, maxTokens: 1000, signal: ac.signal, onAbort: 'keep' });
  for await (const chunk of chunks) {
    seen += chunk;
    if (seen.length > 20) ac.abort();
  }
  const t = session.lastTurnStats!;
  assert.equal(t.stopReason, 'aborted');
  assert.ok(t.generatedTokens > 0 && t.generatedTokens < 1000);
  assert.deepEqual(session.history, [
    { role: 'user', content: 'Hello' },
    { role: 'assistant', content: seen },
  ]);
  // prompt() resolves with the partial reply.
  const ac2 = new AbortController();
  setTimeout(() => ac2.abort(), 30);
  const partial = await session.prompt('More', { temperature: 0, maxTokens: 100000, signal: ac2.signal, onAbort: 'keep' });
  assert.equal(session.history.at(-1)!.content, partial);
  // Breaking out of a stream: 'keep' records what was read, the default rolls back.
  for await (const chunk of session.stream('Again', { ...GREEDY, onAbort: 'keep' })) {
    assert.ok(chunk.length > 0);
    break;
  }
  assert.equal(session.history.length, 6);
  assert.equal(session.lastTurnStats!.stopReason, 'aborted');
  for await (const _ of session.stream('Once more', GREEDY)) break;
  assert.equal(session.history.length, 6);
  assert.equal(await session.prompt('Last', { ...GREEDY, maxTokens: 5 }).then((r) => typeof r), 'string');
  assert.equal(session.history.length, 8);
});

test('context overflow: CONTEXT_FULL leaves the session as it was, or dropOldest drops old exchanges', async () => {
  await using strict = model.createChatSession({ systemPrompt: SYSTEM, contextSize: 96, threads: 1 });
  await strict.prompt('Hi', { temperature: 0, maxTokens: 20 });
  const history = strict.history;
  const long = 'Tell me a very long story about a cat, a dog and a bird in the forest. '.repeat(3);
  await assert.rejects(strict.prompt(long, GREEDY), code('CONTEXT_FULL'));
  assert.deepEqual(strict.history, history);
  // A reply that reaches the end of the context stops there.
  const r = await strict.prompt('Go on', { temperature: 0 });
  assert.equal(strict.lastTurnStats!.stopReason, 'contextFull');
  assert.equal(strict.contextTokens, 96);
  assert.equal(strict.history.at(-1)!.content, r);

  await using rolling = model.createChatSession({ systemPrompt: SYSTEM, contextSize: 96, threads: 1, overflow: 'dropOldest' });
  for (const q of ['Hi', 'Tell me about a cat', 'And a dog?', 'And a bird?']) {
    await rolling.prompt(q, { temperature: 0, maxTokens: 20 });
    assert.ok(rolling.lastTurnStats!.promptTokens + 20 <= 96);
  }
  const h = rolling.history;
  assert.deepEqual(h[0], { role: 'system', content: SYSTEM });
  assert.ok(h.length < 9, `${h.length} messages kept`);
  assert.deepEqual(h.at(-2), { role: 'user', content: 'And a bird?' });
  // A single message that cannot fit is still CONTEXT_FULL.
  await assert.rejects(rolling.prompt('word '.repeat(200), GREEDY), code('CONTEXT_FULL'));
});

test("the reply ends at the model's end-of-turn tokens", async () => {
  await using session = model.createChatSession({ threads: 1 });
  // Llama 2 ends a reply with </s> (also the vocabulary's EOS).
  assert.deepEqual(session.endOfTurnTokens, [model.tokenizer.eos]);
  // A template whose turns end with a token that is not EOS: <s> here (stories260K has no chat tokens).
  await using custom = model.createChatSession({
    threads: 1,
    template: '{% for m in messages %}{{ m.role }}: {{ m.content }}<s>{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}',
  });
  assert.deepEqual(custom.endOfTurnTokens, [model.tokenizer.bos, model.tokenizer.eos]);
  // Generation stops on such a token: make the first greedy token one.
  const prompt = model.tokenize('Once upon a time');
  const first = (await model.complete(prompt, { temperature: 0, maxTokens: 1 })).tokens[0];
  const it = generate(model, prompt, { temperature: 0, maxTokens: 10 }, { stopTokens: new Set([first]) });
  const r = await it.next();
  assert.equal(r.done, true);
  assert.equal(r.done && r.value.stopReason, 'eos');
});

test('one reply at a time; dispose (also through the model) ends the session', async () => {
  const session = model.createChatSession({ threads: 1 });
  const first = session.prompt('Hello', GREEDY);
  await assert.rejects(session.prompt('Again', GREEDY), code('BUSY'));
  await first;
  assert.throws(() => session.stream(42 as never), code('INVALID_ARGUMENT'));
  assert.throws(() => session.stream('x', { onAbort: 'never' as never }), code('INVALID_ARGUMENT'));
  await assert.rejects(session.prompt('x', { temperature: -1 }), code('INVALID_ARGUMENT'));
  assert.throws(() => model.createChatSession({ systemPrompt: 3 as never }), code('INVALID_ARGUMENT'));
  assert.throws(() => model.createChatSession({ overflow: 'wrap' as never }), code('INVALID_ARGUMENT'));
  assert.throws(() => model.createChatSession({ template: '{% if %}' }), code('CHAT_TEMPLATE_ERROR'));
  session.dispose();
  assert.equal(session.disposed, true);
  await assert.rejects(session.prompt('Hello'), code('DISPOSED'));
  assert.throws(() => session.reset(), code('DISPOSED'));
  session.dispose(); // twice is fine

  const m2 = await loadModel();
  const s2 = m2.createChatSession({ threads: 1 });
  await s2.prompt('Hi', { ...GREEDY, maxTokens: 3 });
  m2.dispose();
  assert.equal(s2.disposed, true);
  await assert.rejects(s2.prompt('Hi'), code('DISPOSED'));
});
