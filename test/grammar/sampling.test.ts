// Grammar-constrained generation: every sampled output (temperature 1, many seeds, and greedy) of every suite grammar on
// stories260K is in the grammar's language by the independent recognizer; the vocabulary mask computed over the token
// trie equals the per-token check on SentencePiece, byte-level BPE and WordPiece vocabularies; the sampler checks one
// token first and falls back to the mask; errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel, type Model } from '../../lib/index.js';
import { Grammar, GrammarMatcher } from '../../lib/grammar/index.js';
import { parseGbnf } from '../../lib/grammar/gbnf.js';
import { isAglmError } from '../../lib/errors.js';
import { Sampler } from '../../lib/sampler/index.js';
import type { Tokenizer } from '../../lib/tokenizer/index.js';
import { defaultModelPath } from '../helpers/fixtures.js';
import { Recognizer } from '../helpers/gbnf-recognizer.js';
import { FIXTURE_DIR, loadTokenizer } from '../tokenizer/load.js';
import { GBNF_SUITE } from './suite.js';

let model: Model;
test.before(async () => {
  model = await loadModel(defaultModelPath);
});
test.after(() => model.dispose());

test('every sampled output of every suite grammar is in its language (stories260K, temperature 1 and greedy)', async (t) => {
  for (const [name, c] of Object.entries(GBNF_SUITE)) {
    const grammar = new Grammar(c.gbnf);
    const r = new Recognizer(parseGbnf(c.gbnf));
    let complete = 0;
    const runs = [{ temperature: 0 }, ...Array.from({ length: 12 }, (_, i) => ({ temperature: 1, seed: 100 + i }))];
    for (const opts of runs) {
      const out = await model.complete('Once upon a time', { ...opts, grammar, maxTokens: c.maxTokens ?? 64 });
      if (out.stopReason === 'eos') {
        complete++;
        assert.ok(r.accepts(out.text), `${name} (${JSON.stringify(opts)}): ${JSON.stringify(out.text)} is not in the language`);
      } else {
        assert.equal(out.stopReason, 'maxTokens', `${name}: stop reason ${out.stopReason}`);
        assert.ok(r.isPrefix(out.text), `${name}: ${JSON.stringify(out.text)}, cut by maxTokens, is not a prefix of the language`);
      }
    }
    t.diagnostic(`${name}: ${complete} of ${runs.length} runs complete, the rest cut by maxTokens`);
    assert.ok(complete >= runs.length / 2, `${name}: only ${complete} of ${runs.length} runs ended by the grammar`);
  }
});

/** Random walks through the grammar: at each state the trie mask must equal allows() for every token. */
function checkMasks(tokenizer: Tokenizer, label: string, steps: number, idStride = 1): void {
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (const [name, c] of Object.entries(GBNF_SUITE)) {
    const matcher = new GrammarMatcher(new Grammar(c.gbnf).automaton(tokenizer));
    for (let step = 0; step < steps; step++) {
      const mask = matcher.mask();
      const allowed: number[] = [];
      for (let id = 0; id < tokenizer.vocab.size; id += idStride) {
        const one = matcher.allows(id);
        assert.equal(mask[id] === 1, one, `${label} ${name} step ${step}: token ${id} ${JSON.stringify(tokenizer.decode([id]))} mask ${mask[id]} allows ${one}`);
      }
      for (let id = 0; id < mask.length; id++) if (mask[id] === 1 && !tokenizer.isEog(id)) allowed.push(id);
      if (allowed.length === 0) break;
      matcher.accept(allowed[Math.floor(rand() * allowed.length)]);
    }
  }
}

test('the vocabulary mask equals the per-token check (SentencePiece with byte tokens: stories260K, llama-spm)', async () => {
  checkMasks(model.tokenizer, 'stories260K', 24);
  checkMasks(await loadTokenizer(join(FIXTURE_DIR, 'ggml-vocab-llama-spm.gguf')), 'llama-spm', 6, 3);
});

test('the vocabulary mask equals the per-token check (byte-level BPE: gpt-2, qwen2; WordPiece: bert)', async () => {
  checkMasks(await loadTokenizer(join(FIXTURE_DIR, 'ggml-vocab-gpt-2.gguf')), 'gpt-2', 6, 3);
  checkMasks(await loadTokenizer(join(FIXTURE_DIR, 'ggml-vocab-qwen2.gguf')), 'qwen2', 3, 7);
  checkMasks(await loadTokenizer(join(FIXTURE_DIR, 'ggml-vocab-bert-bge.gguf')), 'bert', 6, 3);
});

test('UTF-8 split across tokens: byte tokens build a character only a class that holds it accepts', () => {
  const tok = model.tokenizer;
  const byteId = (b: number) => findByteToken(tok, b);
  // 'あ' is E3 81 82; the grammar allows one hiragana character then "!"
  const m = new GrammarMatcher(new Grammar('root ::= [ぁ-ゟ] "!"\n').automaton(tok));
  const e3 = byteId(0xe3), x81 = byteId(0x81), x82 = byteId(0x82), ce = byteId(0xce);
  assert.equal(m.allows(e3), true, 'E3 may start a hiragana character');
  assert.equal(m.allows(ce), false, 'CE starts a Greek character, outside the class');
  m.accept(e3);
  assert.equal(m.allows(x81), true);
  assert.equal(m.allows(byteId(0x41)), false, 'an ASCII byte cannot continue a pending character');
  m.accept(x81);
  m.accept(x82);
  assert.equal(m.complete, false);
  assert.equal(m.mask()[tok.vocab.eog.values().next().value!], 0, 'no end of generation before "!"');
});

function findByteToken(tok: Tokenizer, b: number): number {
  for (let id = 0; id < tok.vocab.size; id++) {
    const bytes = tok.tokenBytes(id);
    if (bytes.length === 1 && bytes[0] === b && tok.vocab.piece(id).startsWith('<0x')) return id;
  }
  throw new Error(`no byte token for ${b}`);
}

test('the sampler: a pick the constraint allows is kept; a refused one is redone over the allowed tokens only', () => {
  const vocab = 50;
  const logits = new Float32Array(vocab).map((_, i) => Math.sin(i * 1.7) * 3);
  const best = logits.indexOf(Math.max(...logits));
  let maskCalls = 0;
  const allowedSet = new Set([3, 9, 27, 41]);
  const allowed = new Uint8Array(vocab).map((_, i) => (allowedSet.has(i) ? 1 : 0));
  const constraint = { allows: (t: number) => allowedSet.has(t), mask: () => (maskCalls++, allowed) };
  const greedy = new Sampler({ temperature: 0 }, vocab);
  const expect = [...allowedSet].reduce((a, b) => (logits[b] > logits[a] ? b : a));
  assert.equal(greedy.sample(logits, constraint), expect);
  assert.equal(maskCalls, allowedSet.has(best) ? 0 : 1);
  const everything = { allows: () => true, mask: () => (maskCalls++, new Uint8Array(vocab).fill(1)) };
  maskCalls = 0;
  assert.equal(greedy.sample(logits, everything), best);
  assert.equal(maskCalls, 0, 'an allowed pick needs no mask');
  const sampler = new Sampler({ temperature: 1, seed: 3 }, vocab);
  for (let i = 0; i < 200; i++) assert.ok(allowedSet.has(sampler.sample(logits, constraint)));
  const none = { allows: () => false, mask: () => new Uint8Array(vocab) };
  assert.throws(() => greedy.sample(logits, none), (e: unknown) => isAglmError(e, 'INVALID_GRAMMAR'));
});

test('generate options: grammar text or Grammar, jsonSchema, not both; bad grammars are INVALID_GRAMMAR at the call', async () => {
  const text = 'root ::= "yes" | "no"\n';
  const a = await model.complete('Is it', { grammar: text, temperature: 0 });
  const b = await model.complete('Is it', { grammar: new Grammar(text), temperature: 0 });
  assert.ok(['yes', 'no'].includes(a.text), a.text);
  assert.equal(a.text, b.text);
  assert.equal(a.stopReason, 'eos');
  await assert.rejects(model.complete('x', { grammar: text, jsonSchema: {} }), (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT'));
  await assert.rejects(model.complete('x', { grammar: 'root ::= nope\n' }), (e: unknown) => isAglmError(e, 'INVALID_GRAMMAR'));
  await assert.rejects(model.complete('x', { grammar: 42 as unknown as string }), (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT'));
  // A token id the vocabulary lacks: nothing can continue.
  await assert.rejects(model.complete('x', { grammar: 'root ::= <[99999]>\n' }), (e: unknown) => isAglmError(e, 'INVALID_GRAMMAR'));
  // A <text> token that is not one token of this vocabulary.
  await assert.rejects(model.complete('x', { grammar: 'root ::= <not-a-token>\n' }), (e: unknown) => isAglmError(e, 'INVALID_GRAMMAR'));
  // The sequence and chat paths take it too.
  const ctx = model.createContext({ contextSize: 256, sequences: 2 });
  try {
    const seq = ctx.createSequence();
    const s = await seq.complete('Is it', { grammar: text, temperature: 0 });
    assert.equal(s.text, a.text);
  } finally {
    ctx.dispose();
  }
});
