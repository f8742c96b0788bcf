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
  const { vocab, parts } = loader(m);
  return { vocab, parts: { ...parts, specialAttrs: ggufSpecialAttrs(m, vocab), asciiStrip: true } };
}

/**
 * lstrip/rstrip of special tokens. GGUF has no key for them, so llama.cpp sets them by model, tokenizer or
 * architecture name (its vocabulary loader, llama-vocab.cpp), and so does this:
 * - tokenizer.ggml.pre jina-v2-de/-es/-code, or architecture nomic-bert-moe / jina-bert-v3: '<mask>' lstrip;
 * - else general.name (lowercased) with 'phi-3' or 'phi3': every special token (control, user-defined, unknown)
 *   rstrip, except '<unk>', '<s>' and '<|endoftext|>' (Phi-3's tokenizer.json says the same);
 * - else general.name with 'modern-bert': '[MASK]' lstrip.
 * Where a text appears twice, the attribute goes to its last id, as llama.cpp's text-to-id map holds that one.
 */
export function ggufSpecialAttrs(m: VocabMetadata, vocab: Vocab): Map<number, SpecialTokenAttrs> | undefined {
  const name = (m.optString('general.name') ?? '').toLowerCase();
  const pre = m.optString('tokenizer.ggml.pre') ?? '';
  const arch = m.optString('general.architecture') ?? '';
  const containsAny = (s: string, parts: readonly string[]) => parts.some((p) => s.includes(p));
  const lastId = (piece: string) => {
    for (let id = vocab.size - 1; id >= 0; id--) if (vocab.piece(id) === piece) return id;
    return undefined;
  };
  const attrs = new Map<number, SpecialTokenAttrs>();
  const set = (piece: string, a: SpecialTokenAttrs) => {
    const id = lastId(piece);
    if (id !== undefined) attrs.set(id, a);
  };
  if (containsAny(pre, ['jina-v2-de', 'jina-v2-es', 'jina-v2-code']) || containsAny(arch, ['nomic-bert-moe', 'jina-bert-v3'])) {
    set('<mask>', { lstrip: true });
  } else if (containsAny(name, ['phi-3', 'phi3'])) {
    const special: readonly number[] = [TokenType.control, TokenType.userDefined, TokenType.unknown];
    for (let id = 0; id < vocab.size; id++) if (special.includes(vocab.type(id))) attrs.set(id, { rstrip: true });
    set('</s>', { rstrip: true });
    for (const p of ['<unk>', '<s>', '<|endoftext|>']) set(p, { rstrip: false });
  } else if (name.includes('modern-bert')) {
    set('[MASK]', { lstrip: true });
  }
  return attrs.size > 0 ? attrs : undefined;
}

function spmFromGguf(m: VocabMetadata): GgufTokenizer {
  const vocab = Vocab.fromMetadata(m);
  return {
    vocab,
    parts: {
      family: 'spm',
      encoder: new SpmEncoder(vocab),
      renderer: new SpaceMarkRenderer(vocab),
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
