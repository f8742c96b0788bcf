// The pre-tokenizer table (tokenizer.ggml.pre names -> regexes) and the Oniguruma -> JS regex translation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAglmError } from '../../lib/errors.js';
import { PRE_TOKENIZERS, Tokenizer, translateOnigRegex, type VocabMetadata } from '../../lib/tokenizer/index.js';
import { onigRegExp } from '../../lib/tokenizer/onig-regex.js';
import { splitSequence } from '../../lib/tokenizer/split.js';
import { FIXTURE_DIR } from './load.js';

function split(pre: string, text: string): string[] {
  const spec = PRE_TOKENIZERS.get(pre);
  assert.ok(spec, pre);
  return splitSequence(spec.regexes.map(onigRegExp), text);
}

/** A whole-string match test for one translated pattern. */
function matches(pattern: string, text: string): boolean {
  const { source, flags } = translateOnigRegex(pattern);
  return new RegExp(`^(?:${source})$`, flags).test(text);
}

test('every pre-tokenizer name compiles and splits text into pieces that cover it', () => {
  const sample = "Hello, y'all! 123456 中文 カタカナ 한국어 🦙 \t\n  x  ";
  assert.ok(PRE_TOKENIZERS.size >= 90, `${PRE_TOKENIZERS.size} names`);
  for (const name of PRE_TOKENIZERS.keys()) {
    const pieces = split(name, sample);
    assert.equal(pieces.join(''), sample, name);
    assert.ok(pieces.every((p) => p.length > 0), name);
  }
  for (const name of ['llama-bpe', 'llama3', 'qwen2', 'deepseek-llm', 'deepseek-coder', 'deepseek-v3', 'gpt-2', 'chatglm-bpe', 'glm4', 'default', 'tekken', 'gpt-4o', 'kimi-k2']) {
    assert.ok(PRE_TOKENIZERS.has(name), name);
  }
});

test('pre-tokenizer splits follow the models\' regexes', () => {
  assert.deepEqual(split('gpt-2', "  Hello world's 2024!!\n"), [' ', ' Hello', ' world', "'s", ' 2024', '!!', '\n']);
  assert.deepEqual(split('llama-bpe', "I'M 12345 ok\n\n  x"), ['I', "'M", ' ', '123', '45', ' ok', '\n\n', ' ', ' x']);
  assert.deepEqual(split('qwen2', 'ab 123'), ['ab', ' ', '1', '2', '3']);
  assert.deepEqual(split('gpt-4o', "HelloWorld's ABCdef"), ['Hello', "World's", ' ABCdef']);
  assert.deepEqual(split('tekken', 'HTTPServer'), ['HTTPServer']);
  assert.deepEqual(split('kimi-k2', '中文abc漢字'), ['中文', 'abc', '漢字']);
  assert.deepEqual(split('superbpe', 'x1234567y'), ['x', '1', '234', '567', 'y']);
  assert.deepEqual(split('afmoe', '1234567'), ['1', '234', '567']);
  assert.deepEqual(split('tiny_aya', '1234567'), ['1', '234', '567']);
  assert.deepEqual(split('bailingmoe', "it's"), ['it', "'s"]);
  assert.deepEqual(split('deepseek-llm', 'Hello 世界123\n'), ['Hello', ' ', '世界', '123', '\n']);
  assert.deepEqual(split('bloom', 'a b, c'), ['a', ' b', ',', ' c']);
  assert.deepEqual(split('gemma4', 'a\n\nb'), ['a', '\n\n', 'b']);
});

test('translation keeps Oniguruma semantics where JS differs', () => {
  // \s is Unicode White_Space: U+0085 yes, U+FEFF no (JS's own \s is the other way round).
  assert.ok(matches('\\s', '\u0085'));
  assert.ok(!matches('\\s', '\ufeff'));
  assert.ok(matches('\\S', '\ufeff'));
  // \d is any decimal digit; \w has letters, marks, all numbers and connector punctuation.
  assert.ok(matches('\\d+', '٣٤'));
  assert.ok(matches('\\w+', 'aé²Ⅻ_'));
  assert.ok(!matches('\\w', '-'));
  // (?i:...) with simple case folding, including the long s.
  assert.ok(matches("(?i:'s|'ll)", "'S"));
  assert.ok(matches("(?i:'s|'ll)", "'\u017f"));
  assert.ok(matches("(?i:'s|'ll)", "'lL"));
  assert.ok(!matches("'s", "'S"));
  assert.ok(matches('a(?i)b|c', 'aB') && matches('a(?i)b|c', 'C'));
  // Possessive quantifiers and atomic groups never give back.
  assert.ok(!matches('a++a', 'aaa'));
  assert.ok(matches('a+a', 'aaa'));
  assert.ok(!matches('(?>a+)a', 'aaa'));
  // Class intersection and scripts.
  assert.ok(matches('[\\p{L}&&[^\\p{Han}]]+', 'abcΩ'));
  assert.ok(!matches('[\\p{L}&&[^\\p{Han}]]+', '中'));
  assert.ok(matches('\\p{Han}+', '漢字'));
  // '.' and '$' are line based ('\n' only).
  assert.ok(!matches('.', '\n'));
  assert.ok(matches('.', '\r'));
  assert.ok(matches('a$\\n', 'a\n'));
  // \x{...} escapes and class syntax characters.
  assert.ok(matches('[\\x{1F7D}\\x{2126}]', '\u1f7d'));
  assert.ok(matches(' ?[^(\\s|.,!?)]+', ' a(b'.slice(0, 2)));
  assert.ok(!matches('[^(\\s|.,!?)]', '|'));
});

test('unsupported regex syntax is an UNSUPPORTED_TOKENIZER error', () => {
  for (const bad of ['(?m:a)', '[[:alpha:]]', '\\p{NoSuchScript}', '(a', '\\G']) {
    assert.throws(() => onigRegExp(bad), (e: unknown) => isAglmError(e, 'UNSUPPORTED_TOKENIZER'), bad);
  }
});

/** A metadata stand-in with only the keys given. */
function fakeMetadata(entries: Record<string, unknown>): VocabMetadata {
  const get = (key: string) => {
    if (!(key in entries)) throw new Error(`missing ${key}`);
    return entries[key];
  };
  return {
    getString: (key) => get(key) as string,
    getStringArray: (key) => get(key) as string[],
    optString: (key) => entries[key] as string | undefined,
    optStringArray: (key) => entries[key] as string[] | undefined,
    optNumber: (key) => entries[key] as number | undefined,
    optBoolean: (key) => entries[key] as boolean | undefined,
    optNumberArray: (key) => entries[key] as ArrayLike<number> | undefined,
  };
}

const TINY_BPE = {
  'tokenizer.ggml.model': 'gpt2',
  'tokenizer.ggml.tokens': ['a', 'b', 'ab', 'Ġ', 'Ġab', '<|bos|>'],
  'tokenizer.ggml.token_type': Int32Array.of(1, 1, 1, 1, 1, 3),
  'tokenizer.ggml.merges': ['a b', 'Ġ ab'],
  'tokenizer.ggml.bos_token_id': 5,
};

test('an unknown pre-tokenizer name is UNSUPPORTED_TOKENIZER naming it and the supported ones', () => {
  assert.throws(
    () => Tokenizer.fromGguf(fakeMetadata({ ...TINY_BPE, 'tokenizer.ggml.pre': 'no-such-pre' })),
    (e: unknown) =>
      isAglmError(e, 'UNSUPPORTED_TOKENIZER') && e.message.includes('"no-such-pre"') && e.message.includes('llama-bpe') && e.message.includes('qwen2'),
  );
});

test('BOS defaults follow the pre-tokenizer: llama3 adds it, GLM-4 has none, a file key wins', () => {
  const llama3 = Tokenizer.fromGguf(fakeMetadata({ ...TINY_BPE, 'tokenizer.ggml.pre': 'llama3' }));
  assert.equal(llama3.addBos, true);
  assert.deepEqual(Array.from(llama3.encode('ab ab')), [5, 2, 4]);
  const gpt2 = Tokenizer.fromGguf(fakeMetadata({ ...TINY_BPE, 'tokenizer.ggml.pre': 'gpt-2' }));
  assert.equal(gpt2.addBos, false);
  const glm = Tokenizer.fromGguf(fakeMetadata({ ...TINY_BPE, 'tokenizer.ggml.pre': 'chatglm-bpe', 'tokenizer.ggml.add_bos_token': true }));
  assert.equal(glm.bos, undefined);
  assert.equal(glm.addBos, false);
  const keyed = Tokenizer.fromGguf(fakeMetadata({ ...TINY_BPE, 'tokenizer.ggml.pre': 'llama3', 'tokenizer.ggml.add_bos_token': false }));
  assert.equal(keyed.addBos, false);
  // No pre key: llama.cpp's 'default'.
  assert.equal(Tokenizer.fromGguf(fakeMetadata(TINY_BPE)).preTokenizer, 'default');
});

test('a BPE vocabulary without merges is GGUF_MISSING_KEY', () => {
  const { ['tokenizer.ggml.merges']: _, ...noMerges } = TINY_BPE;
  assert.throws(
    () => Tokenizer.fromGguf(fakeMetadata({ ...noMerges, 'tokenizer.ggml.pre': 'gpt-2' })),
    (e: unknown) => isAglmError(e, 'GGUF_MISSING_KEY') && e.message.includes('tokenizer.ggml.merges'),
  );
});

interface SplitFixture {
  generator: string;
  patterns: string[][];
  names: Record<string, number>;
  inputs: string[];
  cuts: number[][][];
}

test('every pattern list cuts text where an independent regex engine does (pre-tokenizer-splits.json)', (t) => {
  // Generated by test/fixtures/tokenizer/pre-tokenizer-splits.py with Python's `regex` (see SOURCES.md).
  const fx = JSON.parse(readFileSync(join(FIXTURE_DIR, 'pre-tokenizer-splits.json'), 'utf8')) as SplitFixture;
  for (const [name, i] of Object.entries(fx.names)) {
    assert.deepEqual(PRE_TOKENIZERS.get(name)?.regexes, fx.patterns[i], `${name}: the table changed; regenerate the fixture`);
  }
  let compared = 0;
  fx.patterns.forEach((patterns, i) => {
    const regexes = patterns.map(onigRegExp);
    fx.inputs.forEach((input, j) => {
      const pieces = input === '' ? [] : splitSequence(regexes, input);
      const cuts: number[] = [];
      let at = 0;
      for (const p of pieces.slice(0, -1)) cuts.push((at += [...p].length));
      const name = Object.keys(fx.names).find((n) => fx.names[n] === i);
      assert.deepEqual(cuts, fx.cuts[i][j], `${name} on ${JSON.stringify(input)}: ${JSON.stringify(pieces)}`);
      compared++;
    });
  });
  t.diagnostic(`${fx.patterns.length} pattern lists (${Object.keys(fx.names).length} names) x ${fx.inputs.length} inputs = ${compared} splits agree with ${fx.generator}`);
});
