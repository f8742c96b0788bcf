// SentencePiece BPE tokenizer: stories260K reference ids, llama-spm conformance vectors, byte fallback, special tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAglmError } from '../../lib/errors.js';
import { Tokenizer, Vocab, type VocabMetadata } from '../../lib/tokenizer/index.js';
import { formatIds, LLAMA_SPM_PATH, loadTokenizer, readVectors, STORIES_PATH } from './load.js';

const ONCE_IDS = [1, 403, 407, 261, 378];
const CONTINUATION_IDS = [
  432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295,
  433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312,
  286, 267, 414, 270, 333, 415, 426, 13, 438, 310, 439, 419, 357, 336,
];
const CONTINUATION_TEXT =
  ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. " +
  "She wanted to play with it, but it was too high.\nLily's mom said";

const ids = (a: Uint32Array) => Array.from(a);

test('stories260K: "Once upon a time" encodes to the reference ids with BOS', async () => {
  const t = await loadTokenizer(STORIES_PATH);
  assert.equal(t.vocabSize, 512);
  assert.equal(t.bos, 1);
  assert.equal(t.eos, 2);
  assert.equal(t.unk, 0);
  assert.equal(t.addBos, true);
  assert.deepEqual(ids(t.encode('Once upon a time')), ONCE_IDS);
  assert.deepEqual(ids(t.encode('Once upon a time', { addBos: false })), ONCE_IDS.slice(1));
});

test('stories260K: decoding the reference ids gives the reference text', async () => {
  const t = await loadTokenizer(STORIES_PATH);
  assert.equal(t.decode(CONTINUATION_IDS), CONTINUATION_TEXT);
  assert.equal(t.decode(ONCE_IDS), 'Once upon a time');
  assert.equal(t.decode([...ONCE_IDS, ...CONTINUATION_IDS]), 'Once upon a time' + CONTINUATION_TEXT);
  // A continuation keeps the space of its first word when decoded as one.
  assert.equal(t.decode(ONCE_IDS.slice(2), { atStart: false }), ' upon a time');
  assert.equal(t.decode(ONCE_IDS.slice(2)), 'upon a time');
});

test('llama-spm: every conformance vector matches exactly', async (t) => {
  const tok = await loadTokenizer(LLAMA_SPM_PATH);
  assert.equal(tok.vocabSize, 32000);
  const vectors = readVectors(LLAMA_SPM_PATH);
  assert.equal(vectors.length, 46);
  let passed = 0;
  let firstMismatch: string | undefined;
  for (const { input, expected } of vectors) {
    const got = formatIds(tok.encode(input, { addBos: false }));
    if (got === expected) passed++;
    else firstMismatch ??= `input ${JSON.stringify(input)}\n  expected:${expected}\n  received:${got}`;
  }
  t.diagnostic(`llama-spm conformance: ${passed}/${vectors.length}`);
  assert.equal(passed, vectors.length, `${passed}/${vectors.length} vectors match; first mismatch:\n${firstMismatch}`);
});

test('byte fallback: characters missing from the vocabulary become byte tokens and decode back', async () => {
  const t = await loadTokenizer(STORIES_PATH);
  const byteToken = (b: number) => 3 + b; // stories260K: '<0x00>'..'<0xFF>' are ids 3..258
  for (const ch of ['¥', '🦙', '中', 'ß']) {
    assert.equal(t.vocab.idOf(ch), undefined, `${ch} is not a stories260K piece`);
    const encoded = ids(t.encode(ch, { addBos: false }));
    const bytes = [...Buffer.from(ch, 'utf8')];
    assert.deepEqual(encoded.slice(-bytes.length), bytes.map(byteToken), `${ch} ends in its UTF-8 byte tokens`);
    assert.equal(t.decode(encoded), ch);
    assert.deepEqual(Array.from(t.tokenBytes(byteToken(bytes[0]))), [bytes[0]]);
  }
  const mixed = 'Tom paid 5¥ for a 🦙 and 中文.';
  assert.equal(t.decode(t.encode(mixed)), mixed);
});

test('special tokens: "<s>" text is plain text unless special is true', async () => {
  for (const path of [STORIES_PATH, LLAMA_SPM_PATH]) {
    const t = await loadTokenizer(path);
    const plain = ids(t.encode('<s>', { addBos: false }));
    assert.ok(!plain.includes(1), `special: false must not inject id 1 (got ${plain})`);
    assert.equal(t.decode(plain), '<s>');
    assert.deepEqual(ids(t.encode('<s>', { addBos: false, special: true })), [1]);
    assert.deepEqual(ids(t.encode('<s>', { special: true })), [1, 1]);
    assert.deepEqual(ids(t.encode('a</s>', { addBos: false, special: true })).at(-1), 2);
  }
  const spm = await loadTokenizer(LLAMA_SPM_PATH);
  // The space prefix goes before text that follows a special token (15043 = '▁Hello').
  assert.deepEqual(ids(spm.encode('<s>Hello</s>', { addBos: false, special: true })), [1, 15043, 2]);
  assert.equal(spm.decode([1, 15043, 2]), 'Hello');
  assert.equal(spm.decode([1, 15043, 2], { special: true }), '<s>Hello</s>');
});

test('empty input: no tokens besides BOS', async () => {
  const t = await loadTokenizer(LLAMA_SPM_PATH);
  assert.deepEqual(ids(t.encode('')), [1]);
  assert.deepEqual(ids(t.encode('', { addBos: false })), []);
  assert.deepEqual(ids(t.encode('', { addBos: false, special: true })), []);
  assert.equal(t.decode([]), '');
  assert.equal(t.decode([1]), '');
});

test('round trip: decode(encode(x)) === x on llama-spm', async () => {
  const t = await loadTokenizer(LLAMA_SPM_PATH);
  const samples = [
    'Hello world',
    ' leading space',
    '  two leading spaces and trailing  ',
    'multiple     spaces\tand\ttabs',
    'line one\nline two\r\n\n\nline five',
    '中文字符和日本語のテキスト、한국어',
    'emoji: 🦙🚀😶‍🌫️👍🏽 flags 🇫🇷',
    'combining: e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937',
    'Ünïcödé — “quotes” … ½ ∑ ∞',
    '<s> and </s> as text',
    'a',
    ' ',
    '\n',
  ];
  for (const x of samples) assert.equal(t.decode(t.encode(x)), x, JSON.stringify(x));
  const long = samples.join(' | ').repeat(50);
  assert.equal(t.decode(t.encode(long)), long);
  // SentencePiece's one lossy case: a literal '▁' in the input is indistinguishable from an escaped space.
  assert.equal(t.decode(t.encode('a\u2581b')), 'a b');
});

test('token classes: EOG, control, token bytes', async () => {
  const t = await loadTokenizer(LLAMA_SPM_PATH);
  assert.equal(t.isEog(2), true);
  assert.equal(t.isEog(1), false);
  assert.equal(t.isControl(1), true);
  assert.equal(t.isControl(15043), false);
  assert.deepEqual(Array.from(t.tokenBytes(15043)), [...Buffer.from(' Hello')]);
  assert.deepEqual(Array.from(t.tokenBytes(3 + 0x41)), [0x41]);
  assert.deepEqual(Array.from(t.tokenBytes(1)), [...Buffer.from('<s>')]);
});

test('decode rejects out-of-range and non-integer ids with INVALID_ARGUMENT', async () => {
  const t = await loadTokenizer(STORIES_PATH);
  for (const bad of [-1, 512, 1.5, NaN]) {
    assert.throws(
      () => t.decode([1, bad]),
      (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT') && /^Expected an integer token id from 0 to 511 for token but received/.test(e.message),
    );
  }
  assert.throws(() => t.createStreamDecoder().push(600), (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => t.encode('x', { special: 1 as unknown as boolean }), (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT'));
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

test('other tokenizer models are refused with UNSUPPORTED_TOKENIZER naming the model', () => {
  const m = fakeMetadata({ 'tokenizer.ggml.model': 'rwkv', 'tokenizer.ggml.tokens': ['a', 'b'] });
  assert.throws(
    () => Tokenizer.fromGguf(m),
    (e: unknown) => isAglmError(e, 'UNSUPPORTED_TOKENIZER') && e.message.includes('"rwkv"') && e.message.includes('llama, gpt2, bert'),
  );
});

test('a vocabulary without byte tokens falls back to UNK; missing flags take the llama defaults', () => {
  const vocab = Vocab.fromMetadata(
    fakeMetadata({
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.tokens': ['<unk>', '<s>', '</s>', '\u2581', 'a', 'b', '\u2581a', 'ab', '\u2581ab'],
      'tokenizer.ggml.scores': Float32Array.of(0, 0, 0, -5, -1, -1, -2, -3, -4),
      'tokenizer.ggml.token_type': Int32Array.of(2, 3, 3, 1, 1, 1, 1, 1, 1),
    }),
  );
  assert.equal(vocab.addBos, true);
  assert.equal(vocab.addSpacePrefix, true);
  assert.equal(vocab.hasByteTokens, false);
  const t = new Tokenizer(vocab);
  // '▁a' (-2) merges before 'ab' (-3); then '▁a'+'b' = '▁ab' (-4). 'c' is unknown.
  assert.deepEqual(ids(t.encode('ab c')), [1, 8, 3, 0]);
  assert.equal(t.decode([1, 8, 3, 0]), 'ab  \u2047 ');
});

test('special splitting takes the longest special piece at each position', () => {
  const t = Tokenizer.fromGguf(
    fakeMetadata({
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.tokens': ['<unk>', '<s>', '</s>', '\u2581', 'a', '<|', '<|e|>', '<|e|>!'],
      'tokenizer.ggml.token_type': Int32Array.of(2, 3, 3, 1, 1, 4, 3, 4),
    }),
  );
  assert.deepEqual(ids(t.encode('a<|e|>!<|e|><|', { addBos: false, special: true })), [3, 4, 7, 6, 5]);
  assert.deepEqual(ids(t.encode('<|e|>a', { addBos: false, special: true })), [6, 3, 4]);
  assert.equal(t.decode([3, 4, 7, 6, 5]), 'a<|e|>!<|');
  assert.equal(t.decode([3, 4, 7, 6, 5], { special: true }), 'a<|e|>!<|e|><|');
});
