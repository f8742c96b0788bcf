// GBNF: parsing (llama.cpp's syntax and its errors), the language each suite grammar accepts (Grammar.test against
// hand-written sentences and an independent recursive-descent recognizer on random and mutated sentences), left
// recursion refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Grammar } from '../../lib/grammar/index.js';
import { parseGbnf } from '../../lib/grammar/gbnf.js';
import { isAglmError } from '../../lib/errors.js';
import { Recognizer, randomSentence } from '../helpers/gbnf-recognizer.js';
import { GBNF_SUITE } from './suite.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const grammarError = (pattern: RegExp) => (e: unknown) => isAglmError(e, 'INVALID_GRAMMAR') && pattern.test((e as Error).message);

test('the suite grammars accept and reject their hand-written sentences (Grammar.test and the independent recognizer)', () => {
  for (const [name, c] of Object.entries(GBNF_SUITE)) {
    const g = new Grammar(c.gbnf);
    const r = new Recognizer(parseGbnf(c.gbnf));
    for (const s of c.accept) {
      assert.equal(g.test(s), true, `${name}: Grammar.test should accept ${JSON.stringify(s)}`);
      assert.equal(r.accepts(s), true, `${name}: the recognizer should accept ${JSON.stringify(s)}`);
    }
    for (const s of c.reject) {
      assert.equal(g.test(s), false, `${name}: Grammar.test should reject ${JSON.stringify(s)}`);
      assert.equal(r.accepts(s), false, `${name}: the recognizer should reject ${JSON.stringify(s)}`);
    }
  }
});

test('random sentences of each grammar are accepted, and mutated ones judged as the recognizer judges them', () => {
  const rand = rng(7);
  for (const [name, c] of Object.entries(GBNF_SUITE)) {
    const ast = parseGbnf(c.gbnf);
    const g = new Grammar(c.gbnf);
    const r = new Recognizer(ast);
    let sentences = 0;
    let mutatedIn = 0;
    for (let i = 0; i < 2000 && sentences < 150; i++) {
      const s = randomSentence(ast, rand);
      if (s === undefined) continue;
      sentences++;
      assert.equal(r.accepts(s), true, `${name}: recognizer on generated ${JSON.stringify(s)}`);
      assert.equal(g.test(s), true, `${name}: Grammar.test on generated ${JSON.stringify(s)}`);
      const chars = [...s];
      const at = Math.floor(rand() * (chars.length + 1));
      const pool = [...new Set([...c.accept.join(''), 'a', '0', ' ', '"', '(', ')', '\n'])];
      const ch = pool[Math.floor(rand() * pool.length)];
      const variants = [
        [...chars.slice(0, at), ch, ...chars.slice(at)].join(''),
        [...chars.slice(0, at), ...chars.slice(at + 1)].join(''),
        [...chars.slice(0, at), ch, ...chars.slice(at + 1)].join(''),
      ];
      for (const v of variants) {
        const want = r.accepts(v);
        if (want) mutatedIn++;
        assert.equal(g.test(v), want, `${name}: Grammar.test on mutated ${JSON.stringify(v)} (from ${JSON.stringify(s)})`);
      }
    }
    assert.ok(sentences >= 100, `${name}: only ${sentences} sentences generated`);
    assert.ok(mutatedIn < sentences * 3, `${name}: every mutation stayed in the language`);
  }
});

test('parse errors are INVALID_GRAMMAR with the place', () => {
  const cases: [string, RegExp][] = [
    ['root ::= foo\n', /rule "foo" is used but not defined/],
    ['start ::= "a"\n', /no "root" rule/],
    ['root ::= "abc\n', /unexpected end of input|line 1/],
    ['root ::= [a-\n', /line/],
    ['root ::= "\\q"\n', /unknown escape "\\q" at line 1, column 11/],
    ['root ::= "\\x4"\n', /expected 2 hex digits/],
    ['root ::= "a"{3,1}\n', /maximum is below its minimum/],
    ['root ::= "a"{2001}\n', /more than 2000/],
    ['root ::= * "a"\n', /repetition with nothing before it/],
    ['root ::= ("a" "b"\n', /expected "\)"/],
    ['root = "a"\n', /expected "::="/],
    ['root ::= "a"\nroot ::= "b"\n', /defined twice at line 2/],
    ['root ::= "a" )\n', /expected the end of the line at line 1, column 14/],
    ['root ::= [z-a]\n', /end comes before its start/],
    ['root ::= <[12\n', /expected "\]>"/],
    ['root ::= "\\U00110000"\n', /above U\+10FFFF/],
  ];
  for (const [text, pattern] of cases) assert.throws(() => new Grammar(text), grammarError(pattern), JSON.stringify(text));
  assert.throws(() => new Grammar(42 as unknown as string), (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT'));
  // another start rule
  assert.equal(new Grammar('start ::= "a"\n', { root: 'start' }).test('a'), true);
});

test('left recursion is refused (direct, indirect, behind a rule that can be empty, through a repetition)', () => {
  const cases = [
    'root ::= root "a" | "b"\n',
    'root ::= x\nx ::= y "a"\ny ::= root | "b"\n',
    'root ::= e root "a" | "b"\ne ::= "c"?\n',
    'root ::= ("x"? root)* "a"\n',
  ];
  for (const text of cases) assert.throws(() => new Grammar(text), grammarError(/left recursion/), JSON.stringify(text));
  // right recursion is fine
  const g = new Grammar('root ::= "a" root | "b"\n');
  assert.equal(g.test('aaab'), true);
  assert.equal(g.test('aaa'), false);
});

test('repetitions: bounds as written; a maximum above 2000 is unbounded; {m} exact', () => {
  const g = new Grammar('root ::= "a"{0,3} "b"{2} "c"{1,5000}\n');
  assert.equal(g.test('bbc'), true);
  assert.equal(g.test('aaabb' + 'c'.repeat(2500)), true);
  assert.equal(g.test('aaaabbc'), false);
  assert.equal(g.test('abbbc'), false);
  const lit = new Grammar('root ::= "ab"{2} ("c" | "d"){1,2}\n');
  assert.equal(lit.test('ababcd'), true);
  assert.equal(lit.test('abbcd'), false);
});

test('token elements parse and never match plain text', () => {
  const g = new Grammar('root ::= <[5]> "a" | !<[7]> "b" | "c"\n');
  assert.equal(g.test('c'), true);
  assert.equal(g.test('a'), false);
  assert.equal(g.test('b'), false);
});
