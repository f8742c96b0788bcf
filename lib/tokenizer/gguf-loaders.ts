// Building a tokenizer from GGUF metadata, by `tokenizer.ggml.model`: 'llama' (SentencePiece BPE), 'gpt2' (BPE with
// the pre-tokenizer named by `tokenizer.ggml.pre`), 'bert' (WordPiece).
import { AglmError } from '../errors.js';
import { BpeModel } from './bpe.js';
import { BpeEncoder, SpmEncoder, WordPieceEncoder, type Normalizer, type PreTokenizer } from './encoders.js';
import { onigRegExp } from './onig-regex.js';
import type { TokenizerParts } from './parts.js';
import { PRE_TOKENIZERS } from './pre-tokenizers.js';
import { ByteLevelRenderer, SpaceMarkRenderer, WordPieceRenderer } from './renderers.js';
import type { SpecialTokenAttrs } from './special-tokens.js';
import { splitIsolated, splitSequence } from './split.js';
import { SPACE_MARK } from './spm.js';
import { TokenType, Vocab, type VocabMetadata } from './vocab.js';
import { WordPieceModel } from './wordpiece.js';

export interface GgufTokenizer {
  vocab: Vocab;
  parts: TokenizerParts;
}

type GgufLoader = (m: VocabMetadata) => GgufTokenizer;

/** The tokenizer models GGUF files name, and how each is built. */
const GGUF_LOADERS: Readonly<Record<string, GgufLoader>> = {
  llama: spmFromGguf,
  gpt2: bpeFromGguf,
  bert: wordPieceFromGguf,
};

export const SUPPORTED_GGUF_MODELS: readonly string[] = Object.keys(GGUF_LOADERS);

export function tokenizerFromGguf(m: VocabMetadata): GgufTokenizer {
  const model = m.getString('tokenizer.ggml.model');
  const loader = Object.hasOwn(GGUF_LOADERS, model) ? GGUF_LOADERS[model] : undefined;
  if (loader === undefined) {
    throw new AglmError(
      'UNSUPPORTED_TOKENIZER',
      `The tokenizer model "${model}" is not supported (supported: ${SUPPORTED_GGUF_MODELS.join(', ')})`,
    );
  }
  return loader(m);
}

/**
 * Phi-3's special tokens drop the whitespace after them, except <unk>, <s> and <|endoftext|> (its tokenizer.json says
 * rstrip for them; GGUF has no key for it, so llama.cpp keys it on the model name, as here).
 */
function phi3Attrs(m: VocabMetadata, vocab: Vocab): Map<number, SpecialTokenAttrs> | undefined {
  const arch = m.optString('general.architecture') ?? '';
  const name = (m.optString('general.name') ?? '').toLowerCase();
  if (arch !== 'phi3' && !name.includes('phi-3') && !name.includes('phi3')) return undefined;
  const attrs = new Map<number, SpecialTokenAttrs>();
  for (let id = 0; id < vocab.size; id++) if (vocab.type(id) === TokenType.control) attrs.set(id, { rstrip: true });
  const set = (piece: string, rstrip: boolean) => {
    const id = vocab.idOf(piece);
    if (id !== undefined) attrs.set(id, { rstrip });
  };
  set('</s>', true);
  for (const p of ['<unk>', '<s>', '<|endoftext|>']) set(p, false);
  return attrs;
}

function spmFromGguf(m: VocabMetadata): GgufTokenizer {
  const vocab = Vocab.fromMetadata(m);
  return {
    vocab,
    parts: {
      family: 'spm',
      encoder: new SpmEncoder(vocab),
      renderer: new SpaceMarkRenderer(vocab),
      specialAttrs: phi3Attrs(m, vocab),
    },
  };
}

/** The words of `text` under a sequence of regexes (one regex: a single pass). */
export function regexPreTokenizer(regexes: readonly RegExp[]): PreTokenizer {
  if (regexes.length === 1) {
    const re = regexes[0];
    return (text) => {
      const out: string[] = [];
      splitIsolated(re, text, out);
      return out;
    };
  }
  return (text) => splitSequence(regexes, text);
}

function bpeFromGguf(m: VocabMetadata): GgufTokenizer {
  const pre = m.optString('tokenizer.ggml.pre') ?? 'default';
  const spec = PRE_TOKENIZERS.get(pre);
  if (spec === undefined) {
    throw new AglmError(
      'UNSUPPORTED_TOKENIZER',
      `The pre-tokenizer "${pre}" (tokenizer.ggml.pre) is not supported (supported: ${[...PRE_TOKENIZERS.keys()].join(', ')})`,
    );
  }
  const vocab = Vocab.fromMetadata(m, { addBos: spec.addBos, addSep: spec.addSep, noBos: spec.noBos });
  const merges = m.optStringArray('tokenizer.ggml.merges');
  if (merges === undefined) {
    throw new AglmError('GGUF_MISSING_KEY', 'GGUF metadata key "tokenizer.ggml.merges" is missing (a BPE vocabulary needs its merges)');
  }
  const byteLevel = spec.byteLevel ?? true;
  const bpe = new BpeModel(vocab, merges, {
    byteLevel,
    ignoreMerges: spec.ignoreMerges === true,
    byteFallback: !byteLevel,
    unk: vocab.unk,
  });
  const steps: Normalizer[] = [];
  if (spec.normalize !== undefined) steps.push((s) => s.normalize(spec.normalize));
  if (spec.escapeSpaces === true) steps.push((s) => s.replaceAll(' ', SPACE_MARK));
  const normalize: Normalizer | undefined = steps.length === 0 ? undefined : (s) => steps.reduce((acc, f) => f(acc), s);
  return {
    vocab,
    parts: {
      family: 'bpe',
      encoder: new BpeEncoder(bpe, regexPreTokenizer(spec.regexes.map(onigRegExp)), normalize),
      renderer: byteLevel ? new ByteLevelRenderer(vocab, false) : new SpaceMarkRenderer(vocab, false),
      preTokenizer: pre,
    },
  };
}

function wordPieceFromGguf(m: VocabMetadata): GgufTokenizer {
  const vocab = Vocab.fromMetadata(m);
  const lowercase = m.optBoolean('tokenizer.ggml.normalizer.lowercase') ?? true;
  const stripAccents = m.optBoolean('tokenizer.ggml.normalizer.strip_accents') ?? lowercase;
  const model = new WordPieceModel(vocab, { kind: 'space-mark' }, vocab.unk);
  return {
    vocab,
    parts: {
      family: 'wordpiece',
      encoder: WordPieceEncoder.bert(model, { cleanText: true, handleChineseChars: true, stripAccents, lowercase }),
      renderer: new WordPieceRenderer(model),
    },
  };
}
