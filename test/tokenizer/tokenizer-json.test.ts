// Tokenizer.fromTokenizerJson: Hugging Face tokenizer.json definitions of the fixture vocabularies must give the same
// ids as the GGUF files on the conformance vectors. The definitions are written here from each GGUF vocabulary, in
// the shape the model's real tokenizer.json has: byte-level BPE (ByteLevel, or Split regexes + ByteLevel), WordPiece
// (BertNormalizer + BertPreTokenizer), and SentencePiece-style BPE with byte fallback (Prepend/Replace normalizer; its
// merges derived from the SentencePiece scores, as converters do).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGguf, type GgufMetadata } from '../../lib/gguf/index.js';
import { isAglmError } from '../../lib/errors.js';
import { PRE_TOKENIZERS, Tokenizer, TokenType } from '../../lib/tokenizer/index.js';
import { formatIds, PLAIN, readVectors, vectorFiles } from './load.js';

type Json = Record<string, unknown>;

/** piece -> id, the first id for a repeated piece. (Not `vocab[p] ??= id`: that skips 'toString' and 'constructor'.) */
function vocabObject(pieces: string[], pieceOf: (p: string, id: number) => string = (p) => p): Record<string, number> {
  const map = new Map<string, number>();
  pieces.forEach((p, id) => {
    const key = pieceOf(p, id);
    if (!map.has(key)) map.set(key, id);
  });
  return Object.fromEntries(map);
}

function addedTokens(tokens: string[], types: ArrayLike<number>): Json[] {
  const out: Json[] = [];
  for (let id = 0; id < tokens.length; id++) {
    if (types[id] === TokenType.control || types[id] === TokenType.userDefined) {
      out.push({ id, content: tokens[id], special: types[id] === TokenType.control, lstrip: false, rstrip: false, normalized: false, single_word: false });
    }
  }
  return out;
}

function byteLevelJson(m: GgufMetadata): Json {
  const pre = m.getString('tokenizer.ggml.pre');
  const spec = PRE_TOKENIZERS.get(pre)!;
  const tokens = m.getStringArray('tokenizer.ggml.tokens');
  const types = m.getNumberArray('tokenizer.ggml.token_type');
  const vocab = vocabObject(tokens);
  const preTokenizer =
    pre === 'gpt-2'
      ? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }
      : {
          type: 'Sequence',
          pretokenizers: [
            ...spec.regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
          ],
        };
  return {
    version: '1.0',
    added_tokens: addedTokens(tokens, types),
    normalizer: spec.normalize === undefined ? null : { type: spec.normalize },
    pre_tokenizer: preTokenizer,
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: spec.ignoreMerges === true,
      vocab,
      // The newer tokenizer.json form: merges as [left, right] pairs.
      merges: m.getStringArray('tokenizer.ggml.merges').map((s) => [s.slice(0, s.indexOf(' ', 1)), s.slice(s.indexOf(' ', 1) + 1)]),
    },
  };
}

function wordPieceJson(m: GgufMetadata): Json {
  const tokens = m.getStringArray('tokenizer.ggml.tokens');
  const types = m.getNumberArray('tokenizer.ggml.token_type');
  const vocab = vocabObject(tokens, (t, id) => (types[id] !== TokenType.normal ? t : t.startsWith('\u2581') ? t.slice(1) : '##' + t));
  return {
    added_tokens: addedTokens(tokens, types),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** Merges for a SentencePiece vocabulary: every split of a piece into two pieces, best-scored merged piece first. */
function spmMerges(tokens: string[], scores: ArrayLike<number>, types: ArrayLike<number>): string[][] {
  const ids = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (types[id] === TokenType.normal && !ids.has(t)) ids.set(t, id);
  });
  const merges: { left: string; right: string; score: number; order: number }[] = [];
  for (const [piece, id] of ids) {
    const chars = [...piece];
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      if (ids.has(left) && ids.has(right)) merges.push({ left, right, score: scores[id], order: merges.length });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.order - b.order);
  return merges.map((x) => [x.left, x.right]);
}

function spmJson(m: GgufMetadata): Json {
  const tokens = m.getStringArray('tokenizer.ggml.tokens');
  const types = m.getNumberArray('tokenizer.ggml.token_type');
  const scores = m.getNumberArray('tokenizer.ggml.scores');
  const vocab = vocabObject(tokens);
  return {
    added_tokens: addedTokens(tokens, types),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '\u2581' },
        { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      // The older tokenizer.json form: merges as "left right" strings.
      merges: spmMerges(tokens, scores, types).map(([l, r]) => `${l} ${r}`),
    },
  };
}

function tokenizerJsonOf(m: GgufMetadata): Json {
  const model = m.getString('tokenizer.ggml.model');
  if (model === 'gpt2') return byteLevelJson(m);
  if (model === 'bert') return wordPieceJson(m);
  return spmJson(m);
}

for (const { name, path } of vectorFiles()) {
  test(`${name}: a tokenizer.json of the same vocabulary gives the same ids`, async (t) => {
    const gguf = await readGguf(path);
    const json = tokenizerJsonOf(gguf.metadata);
    // Through JSON text, as it is read from disk.
    const tok = Tokenizer.fromTokenizerJson(JSON.stringify(json));
    const ref = Tokenizer.fromGguf(gguf.metadata);
    const vectors = readVectors(path);
    let passed = 0;
    let firstMismatch: string | undefined;
    for (const { input, expected } of vectors) {
      const got = formatIds(tok.encode(input, PLAIN));
      if (got === expected) passed++;
      else firstMismatch ??= `input ${JSON.stringify(input)}\n  expected:${expected}\n  received:${got}`;
      assert.equal(tok.decode(tok.encode(input, PLAIN)), ref.decode(ref.encode(input, PLAIN)), 'same decoded text');
    }
    t.diagnostic(`${name} from tokenizer.json (${tok.family}): ${passed}/${vectors.length}`);
    assert.equal(passed, vectors.length, `${passed}/${vectors.length}; first mismatch:\n${firstMismatch}`);
    // BOS/SEP come from the post-processor.
    if (tok.family === 'wordpiece') {
      assert.equal(tok.addBos, true);
      assert.equal(tok.addSep, true);
      assert.deepEqual(Array.from(tok.encode('hi')), [tok.bos, ...tok.encode('hi', PLAIN), tok.sep]);
    }
  });
}

test('tokenizer.json: unsupported models and components are named in UNSUPPORTED_TOKENIZER errors', () => {
  const base = { model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'] } };
  const bad: [Json, string][] = [
    [{ model: { type: 'Unigram', vocab: [] } }, 'Unigram'],
    [{ ...base, normalizer: { type: 'Precompiled', precompiled_charsmap: '' } }, 'Precompiled'],
    [{ ...base, pre_tokenizer: { type: 'UnicodeScripts' } }, 'UnicodeScripts'],
    [{ model: { ...base.model, end_of_word_suffix: '</w>' } }, 'end_of_word_suffix'],
  ];
  for (const [json, what] of bad) {
    assert.throws(
      () => Tokenizer.fromTokenizerJson(json),
      (e: unknown) => isAglmError(e, 'UNSUPPORTED_TOKENIZER') && e.message.includes(what),
      what,
    );
  }
  assert.throws(() => Tokenizer.fromTokenizerJson('{not json'), (e: unknown) => isAglmError(e, 'INVALID_ARGUMENT'));
});

test('tokenizer.json: a minimal byte-level BPE with an added special token', () => {
  const tok = Tokenizer.fromTokenizerJson({
    added_tokens: [{ id: 5, content: '<|end|>', special: true }],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, 'Ġ': 3, 'Ġab': 4 }, merges: ['a b', 'Ġ ab'] },
  });
  assert.equal(tok.family, 'bpe');
  assert.deepEqual(Array.from(tok.encode('ab ab')), [2, 4]);
  assert.deepEqual(Array.from(tok.encode('ab<|end|>', { special: true })), [2, 5]);
  assert.equal(tok.decode([2, 4, 5]), 'ab ab');
  assert.equal(tok.decode([2, 4, 5], { special: true }), 'ab ab<|end|>');
  assert.equal(tok.isControl(5), true);
});
