// Chat sessions on stories260K (no chat template in the file: the built-in Llama 2 one): the second turn evaluates
// only what is new and replies exactly as a fresh evaluation of the whole conversation; streaming, abort (rollback or
// keep), context overflow, end-of-turn tokens, busy and dispose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AglmError, loadModel, type ChatMessage, type ChatSession, type ChatTurnStats } from '../../lib/index.js';
import { ChatTemplate } from '../../lib/chat/index.js';
import { generate } from '../../lib/model/generate.js';

const model = await loadModel();
test.after(() => model.dispose());
const tk = model.tokenizer;

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

/** Llama 2's tokens after a reply: ' </s>' closing it ('▁', '</s>'), then the user turn '<s>[INST] text [/INST]'. */
function afterReply(text: string): number[] {
  return [tk.vocab.idOf('▁')!, tk.eos!, ...model.chatTemplate.tokenize([{ role: 'user', content: text }])];
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

test("a chat keeps each reply's tokens as generated: turns 2 and 3 evaluate only the text after the reply and equal a fresh evaluation", async () => {
  await using session = model.createChatSession({ systemPrompt: SYSTEM, threads: 1 });
  assert.equal(session.template.name, 'llama2');
  const questions = ['Hello', 'And then?', 'What did the cat say?'];
  const history: ChatMessage[] = [{ role: 'system', content: SYSTEM }];
  let prev: ChatTurnStats | undefined;
  for (const question of questions) {
    const reply = await session.prompt(question, GREEDY);
    const t = session.lastTurnStats!;
    const messages = [...history, { role: 'user', content: question }];
    // Exactly one BOS first (Llama 2 writes one more per user turn).
    assert.equal(t.promptTokenIds[0], tk.bos);
    assert.notEqual(t.promptTokenIds[1], tk.bos);
    assert.equal(t.promptTokens, t.promptTokenIds.length);
    assert.equal(t.evaluatedTokens, t.promptTokens - t.reusedTokens);
    if (prev === undefined) {
      assert.equal(t.continued, 'none');
      assert.equal(t.reusedTokens, 0);
      assert.deepEqual(t.promptTokenIds, Array.from(model.chatTemplate.tokenize(messages)));
    } else {
      // The prompt is what the context holds (the previous prompt and reply, the reply's tokens as generated), then
      // the tokens of the template text after the reply: ' </s>' closing it and the new user turn.
      assert.equal(t.continued, 'reply');
      assert.deepEqual(t.promptTokenIds, [...prev.promptTokenIds, ...prev.tokens, ...afterReply(question)]);
      // Everything the previous turn left in the context is reused; evaluated: the reply's last token if it was never
      // evaluated, then the text after the reply.
      assert.equal(t.reusedTokens, leftInContext(prev));
      assert.equal(t.evaluatedTokens, (prev.stopReason === 'eos' ? 0 : 1) + afterReply(question).length);
      // Re-tokenizing the conversation's text (what a turn did before) parts from the cache early: the greedy replies
      // start with '.' where the template writes ' .' (' ' then '.'), so their tokens are not their text's tokens.
      const canonical = model.chatTemplate.tokenize(messages);
      const textReuse = commonPrefix(canonical, [...prev.promptTokenIds, ...prev.tokens].slice(0, leftInContext(prev)));
      assert.ok(textReuse < t.reusedTokens, `${textReuse} < ${t.reusedTokens}`);
      assert.notDeepEqual(Array.from(canonical), t.promptTokenIds);
      console.log(
        `# turn ${(history.length + 1) / 2}: ${t.promptTokens} prompt tokens, ${t.reusedTokens} reused, ${t.evaluatedTokens} evaluated ` +
          `(the conversation's text tokenized: ${canonical.length} tokens, ${textReuse} of them as in the cache)`,
      );
      // A fresh context evaluating the same tokens at once gives the same greedy reply.
      const fresh = await model.complete(t.promptTokenIds, GREEDY);
      assert.deepEqual(t.tokens, fresh.tokens);
      assert.equal(reply, fresh.text.replace(/^ /, ''));
    }
    assert.equal(session.contextTokens, leftInContext(t));
    history.push({ role: 'user', content: question }, { role: 'assistant', content: reply });
    prev = t;
  }
  assert.ok(history[2].content.startsWith('.'), history[2].content);
  assert.deepEqual(session.history, history);
});

test('a reply that ended at the end-of-turn token: the template text after it starts with that token, evaluated once', async () => {
  // Turns end with <s> here; the model ends its reply with <s> (sampled, so never evaluated), and the next prompt
  // holds it once: as the first token of the text after the reply.
  const template = '{% for m in messages %}{{ m.role }}: {{ m.content }}<s>{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';
  await using session = model.createChatSession({ threads: 1, template });
  await session.prompt('Hello', { temperature: 0, maxTokens: 400 });
  const t1 = session.lastTurnStats!;
  assert.equal(t1.stopReason, 'eos');
  const next = await generate(model, [...t1.promptTokenIds, ...t1.tokens], { temperature: 0, maxTokens: 1 }).next();
  assert.equal(!next.done && next.value.token, tk.bos);
  assert.equal(session.contextTokens, t1.promptTokens + t1.generatedTokens);

  const reply2 = await session.prompt('And then?', GREEDY);
  const t2 = session.lastTurnStats!;
  const after = Array.from(model.tokenize('<s>user: And then?<s>assistant:', { special: true, addBos: false }));
  assert.equal(t2.continued, 'reply');
  assert.deepEqual(t2.promptTokenIds, [...t1.promptTokenIds, ...t1.tokens, ...after]);
  assert.equal(t2.reusedTokens, t1.promptTokens + t1.generatedTokens);
  assert.equal(t2.evaluatedTokens, after.length);
  const fresh = await model.complete(t2.promptTokenIds, GREEDY);
  assert.deepEqual(t2.tokens, fresh.tokens);
  assert.equal(reply2, fresh.text.replace(/^ /, '')); // the template writes 'assistant: ' + reply: the model writes the space
});

test('a template that trims replies falls back to their text: the conversation is tokenized as the template writes it', async () => {
  // The model starts its replies with a space ('▁Once'); this template trims it, so the reply's tokens stand for text
  // the conversation no longer has. The turn continues the previous prompt's tokens and tokenizes the rest.
  const template = '{% for m in messages %}{{ m.role }}:{{ m.content | trim }}<s>{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';
  const trimming = new ChatTemplate(template, 'custom', tk);
  await using session = model.createChatSession({ threads: 1, template });
  const reply1 = await session.prompt('Hello', GREEDY);
  const t1 = session.lastTurnStats!;
  assert.ok(reply1.startsWith(' '), JSON.stringify(reply1));
  const reply2 = await session.prompt('And then?', GREEDY);
  const t2 = session.lastTurnStats!;
  const messages = [
    { role: 'user', content: 'Hello' },
    { role: 'assistant', content: reply1 },
    { role: 'user', content: 'And then?' },
  ];
  assert.equal(t2.continued, 'prompt');
  assert.deepEqual(t2.promptTokenIds, Array.from(trimming.tokenize(messages)));
  assert.equal(t2.reusedTokens, t1.promptTokens);
  assert.equal(t2.evaluatedTokens, t2.promptTokens - t1.promptTokens);
  const fresh = await model.complete(t2.promptTokenIds, GREEDY);
  assert.deepEqual(t2.tokens, fresh.tokens);
  assert.equal(reply2, fresh.text);
  // A template that rewrites what came before (here a count of the messages on top) is tokenized whole.
  await using counting = model.createChatSession({ threads: 1, template: '{{ messages | length }} messages\n' + template });
  await counting.prompt('Hello', GREEDY);
  const c1 = counting.lastTurnStats!;
  await counting.prompt('And then?', GREEDY);
  const c2 = counting.lastTurnStats!;
  assert.equal(c2.continued, 'none');
  assert.ok(c2.reusedTokens < c1.promptTokens, `${c2.reusedTokens}`);
  assert.deepEqual(c2.tokens, (await model.complete(c2.promptTokenIds, GREEDY)).tokens);
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
  assert.equal(c.lastTurnStats!.continued, 'none'); // after reset()
});

test("a reply's tokens are kept only as far as they spell its text: not past a stop string or a control token", async () => {
  /** Checks the turn after `s1`: it continues s1's first `kept` reply tokens, then the rest of the text's tokens. */
  const check = async (session: ChatSession, s1: ChatTurnStats, kept: number, next: string) => {
    await session.prompt(next, GREEDY);
    const s2 = session.lastTurnStats!;
    assert.equal(s2.continued, 'reply');
    const at = s1.promptTokens + kept;
    assert.deepEqual(s2.promptTokenIds.slice(0, at), [...s1.promptTokenIds, ...s1.tokens.slice(0, kept)]);
    assert.notEqual(s2.promptTokenIds[at], s1.tokens[kept]);
    // After them, the tokens of the rest of the text, as tokenizing the whole conversation has them.
    const canonical = Array.from(model.chatTemplate.tokenize(session.history.slice(0, -1)));
    assert.deepEqual(s2.promptTokenIds.slice(at), canonical.slice(canonical.length - (s2.promptTokens - at)));
    assert.equal(s2.reusedTokens, at);
    assert.deepEqual(s2.tokens, (await model.complete(s2.promptTokenIds, GREEDY)).tokens);
  };
  await using session = model.createChatSession({ threads: 1 });
  const whole = await session.prompt('Hello', GREEDY);
  const word = whole.split(' ')[3];
  session.reset();
  // A stop string: the reply ends before it, the tokens that spell it (and what follows) are not kept.
  const cut = await session.prompt('Hello', { ...GREEDY, stop: word });
  const s1 = session.lastTurnStats!;
  assert.equal(s1.stopReason, 'stop');
  let kept = s1.generatedTokens;
  while (!cut.startsWith(tk.decode(s1.tokens.slice(0, kept), { atStart: false }))) kept--;
  assert.ok(kept > 0 && kept < s1.generatedTokens, `${kept} of ${s1.generatedTokens}`);
  await check(session, s1, kept, 'More');

  // A control token inside the reply (stories260K writes <s> before a new story) is not in the reply's text.
  session.reset();
  await session.prompt('Hello', { temperature: 0, maxTokens: 400 });
  const s3 = session.lastTurnStats!;
  const control = s3.tokens.findIndex((id) => tk.isControl(id));
  assert.ok(control > 0, 'a control token in the reply');
  await check(session, s3, control, 'More');
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
  // The next turn reuses everything up to the end of the first reply at least, continuing its tokens as generated;
  // the context holds what the aborted turn evaluated, and the turn equals a fresh evaluation of its prompt.
  const reply = await session.prompt('Tell me more', GREEDY);
  assert.ok(reply.length > 0);
  const again = session.lastTurnStats!;
  assert.ok(again.reusedTokens >= leftInContext(stats!), `${again.reusedTokens}`);
  assert.equal(again.continued, 'reply');
  assert.deepEqual(again.promptTokenIds, [...stats!.promptTokenIds, ...stats!.tokens, ...afterReply('Tell me more')]);
  assert.deepEqual(again.tokens, (await model.complete(again.promptTokenIds, GREEDY)).tokens);
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
  assert.equal(tk.decode(t.tokens, { atStart: false }), seen);
  // The next turn continues the partial reply's tokens.
  await session.prompt('Go on', { ...GREEDY, maxTokens: 5 });
  const next = session.lastTurnStats!;
  assert.equal(next.continued, 'reply');
  assert.deepEqual(next.promptTokenIds, [...t.promptTokenIds, ...t.tokens, ...afterReply('Go on')]);
  assert.deepEqual(next.tokens, (await model.complete(next.promptTokenIds, { ...GREEDY, maxTokens: 5 })).tokens);
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
  assert.equal(session.history.length, 8);
  assert.equal(session.lastTurnStats!.stopReason, 'aborted');
  for await (const _ of session.stream('Once more', GREEDY)) break;
  assert.equal(session.history.length, 8);
  assert.equal(await session.prompt('Last', { ...GREEDY, maxTokens: 5 }).then((r) => typeof r), 'string');
  assert.equal(session.history.length, 10);
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
  const continued: string[] = [];
  for (const q of ['Hi', 'Tell me about a cat', 'And a dog?', 'And a bird?']) {
    const before = rolling.history.length;
    await rolling.prompt(q, { temperature: 0, maxTokens: 20 });
    const s = rolling.lastTurnStats!;
    assert.ok(s.promptTokens + 20 <= 96);
    // Dropping exchanges changes the text the cache stands for: the conversation is tokenized whole again.
    const dropped = rolling.history.length < before + 2;
    if (dropped) assert.equal(s.continued, 'none');
    continued.push(`${s.continued}${dropped ? ' (dropped)' : ''}`);
  }
  assert.ok(continued.some((c) => c.endsWith('(dropped)')), continued.join());
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
