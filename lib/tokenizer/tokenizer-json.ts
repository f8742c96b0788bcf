// Building a tokenizer from a Hugging Face tokenizer.json: its model (BPE or WordPiece), normalizer, pre-tokenizer,
// added tokens and post-processor are mapped onto the same machinery as GGUF vocabularies.
//
// Supported: models BPE (byte-level, or raw text with byte_fallback / unk_token) and WordPiece; normalizers Sequence,
// NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, BertNormalizer, Replace, Prepend, Strip; pre-tokenizers Sequence,
// ByteLevel, Split, Digits, BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Metaspace, CharDelimiterSplit;
// post-processors TemplateProcessing, BertProcessing, RobertaProcessing (for BOS/EOS/SEP). Anything else is an
// UNSUPPORTED_TOKENIZER error naming it. Added tokens are matched on the raw text (`normalized` and `single_word` are
// not honoured).
import { AglmError } from '../errors.js';
import { BpeModel } from './bpe.js';
import { BpeEncoder, WordPieceEncoder, type Normalizer, type PreTokenizer, type TextRunEncoder } from './encoders.js';
import { literalRegExp, onigRegExp } from './onig-regex.js';
import type { TokenizerParts } from './parts.js';
import { GPT2_PATTERN } from './pre-tokenizers.js';
import { ByteLevelRenderer, SpaceMarkRenderer, WordPieceRenderer, type TokenRenderer } from './renderers.js';
import type { SpecialTokenAttrs } from './special-tokens.js';
import { splitIsolated, splitWith, type SplitBehavior } from './split.js';
import { TokenType, Vocab } from './vocab.js';
import { bertNormalize, bertPreTokenize, lowercaseChars, WordPieceModel } from './wordpiece.js';

/** What tokenizer.json does not say (it lives in tokenizer_config.json / generation_config.json). */
export interface TokenizerJsonOptions {
  /** The BOS token (text or id). Default: the first token the post-processor puts before the text. */
  bos?: string | number;
  /** The EOS token (text or id). Default: the token the post-processor puts after the text (not for WordPiece). */
  eos?: string | number;
  /** Default: whether the post-processor adds a token before the text. */
  addBos?: boolean;
  /** Default: whether the post-processor adds EOS after the text. */
  addEos?: boolean;
}

type Json = Record<string, unknown>;

function unsupported(what: string): AglmError {
  return new AglmError('UNSUPPORTED_TOKENIZER', `tokenizer.json: ${what} is not supported`);
}

function invalid(what: string): AglmError {
  return new AglmError('INVALID_ARGUMENT', `tokenizer.json: ${what}`);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Json, key: string, fallback?: string): string {
  const v = o[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw invalid(`"${key}" is missing in ${JSON.stringify(o.type ?? '')}`);
  }
  if (typeof v !== 'string') throw invalid(`"${key}" is not a string`);
  return v;
}

function bool(o: Json, key: string, fallback: boolean): boolean {
  const v = o[key];
  return typeof v === 'boolean' ? v : fallback;
}

/** A Split/Replace pattern: {"String": "..."} or {"Regex": "..."}. */
function patternRegExp(p: unknown): RegExp {
  if (!isObject(p)) throw invalid('a pattern is not an object');
  if (typeof p.String === 'string') return literalRegExp(p.String);
  if (typeof p.Regex === 'string') return onigRegExp(p.Regex);
  throw invalid('a pattern has neither String nor Regex');
}

function normalizerOf(n: unknown): Normalizer | undefined {
  if (n === null || n === undefined) return undefined;
  if (!isObject(n)) throw invalid('the normalizer is not an object');
  const type = str(n, 'type');
  switch (type) {
    case 'Sequence': {
      const list = (Array.isArray(n.normalizers) ? n.normalizers : []).map(normalizerOf).filter((f) => f !== undefined);
      return (s) => list.reduce((acc, f) => f(acc), s);
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (s) => s.normalize(type);
    case 'Lowercase':
      return lowercaseChars;
    case 'StripAccents':
      return (s) => s.replace(/\p{Mn}/gu, '');
    case 'BertNormalizer': {
      const lowercase = bool(n, 'lowercase', true);
      const o = {
        cleanText: bool(n, 'clean_text', true),
        handleChineseChars: bool(n, 'handle_chinese_chars', true),
        stripAccents: typeof n.strip_accents === 'boolean' ? n.strip_accents : lowercase,
        lowercase,
      };
      return (s) => bertNormalize(s, o);
    }
    case 'Replace': {
      const re = patternRegExp(n.pattern);
      const content = str(n, 'content', '');
      return (s) => {
        re.lastIndex = 0;
        return s.replace(re, () => content);
      };
    }
    case 'Prepend': {
      const prepend = str(n, 'prepend');
      return (s) => (s.length === 0 ? s : prepend + s);
    }
    case 'Strip': {
      const left = bool(n, 'strip_left', true);
      const right = bool(n, 'strip_right', true);
      return (s) => {
        let r = s;
        if (left) r = r.replace(/^\p{White_Space}+/u, '');
        if (right) r = r.replace(/\p{White_Space}+$/u, '');
        return r;
      };
    }
    default:
      throw unsupported(`the normalizer "${type}"`);
  }
}

/** Facts about a pre-tokenizer chain that shape the model and the decoder. */
interface PreInfo {
  byteLevel: boolean;
  /** The chain puts a space (or '▁') before the text. */
  addsPrefix: boolean;
}

type PieceStep = (pieces: string[], first: boolean) => string[];

function eachPiece(f: (piece: string, out: string[], index: number, first: boolean) => void): PieceStep {
  return (pieces, first) => {
    const out: string[] = [];
    for (let i = 0; i < pieces.length; i++) f(pieces[i], out, i, first);
    return out;
  };
}

const PUNCTUATION_CHAR = /[\p{P}!-/:-@[-`{-~]/gu;
const WHITESPACE_RUN = /\p{White_Space}+/gu;
const WORDS_OR_SYMBOLS = onigRegExp('\\w+|[^\\w\\s]+');

function preStepOf(p: Json, info: PreInfo): PieceStep {
  const type = str(p, 'type');
  switch (type) {
    case 'Sequence': {
      const steps = (Array.isArray(p.pretokenizers) ? p.pretokenizers : []).map((q) => {
        if (!isObject(q)) throw invalid('a pre-tokenizer is not an object');
        return preStepOf(q, info);
      });
      return (pieces, first) => steps.reduce((acc, f) => f(acc, first), pieces);
    }
    case 'ByteLevel': {
      info.byteLevel = true;
      const addPrefix = bool(p, 'add_prefix_space', true);
      if (addPrefix) info.addsPrefix = true;
      const useRegex = bool(p, 'use_regex', true);
      const re = useRegex ? onigRegExp(GPT2_PATTERN) : undefined;
      return eachPiece((piece, out) => {
        const s = addPrefix && !piece.startsWith(' ') ? ' ' + piece : piece;
        if (re === undefined) out.push(s);
        else splitIsolated(re, s, out);
      });
    }
    case 'Split': {
      const re = patternRegExp(p.pattern);
      const behavior = str(p, 'behavior', 'Isolated') as SplitBehavior;
      if (!['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].includes(behavior)) {
        throw unsupported(`the Split behavior "${behavior}"`);
      }
      const invert = bool(p, 'invert', false);
      return eachPiece((piece, out) => splitWith(re, piece, behavior, invert, out));
    }
    case 'Digits': {
      const re = bool(p, 'individual_digits', false) ? /\p{N}/gu : /\p{N}+/gu;
      return eachPiece((piece, out) => splitIsolated(re, piece, out));
    }
    case 'BertPreTokenizer':
      return eachPiece((piece, out) => bertPreTokenize(piece, out));
    case 'Whitespace':
      return eachPiece((piece, out) => splitWith(WORDS_OR_SYMBOLS, piece, 'Removed', true, out));
    case 'WhitespaceSplit':
      return eachPiece((piece, out) => splitWith(WHITESPACE_RUN, piece, 'Removed', false, out));
    case 'Punctuation': {
      const behavior = str(p, 'behavior', 'Isolated') as SplitBehavior;
      return eachPiece((piece, out) => splitWith(PUNCTUATION_CHAR, piece, behavior, false, out));
    }
    case 'CharDelimiterSplit': {
      const re = literalRegExp(str(p, 'delimiter'));
      return eachPiece((piece, out) => splitWith(re, piece, 'Removed', false, out));
    }
    case 'Metaspace': {
      const replacement = str(p, 'replacement', '\u2581');
      const scheme = typeof p.prepend_scheme === 'string' ? p.prepend_scheme : bool(p, 'add_prefix_space', true) ? 'always' : 'never';
      if (scheme !== 'never') info.addsPrefix = true;
      const split = bool(p, 'split', true);
      const re = literalRegExp(replacement);
      return eachPiece((piece, out, index, first) => {
        let s = piece.replaceAll(' ', replacement);
        const prepend = scheme === 'always' || (scheme === 'first' && first && index === 0);
        if (prepend && !s.startsWith(replacement)) s = replacement + s;
        if (split) splitWith(re, s, 'MergedWithNext', false, out);
        else out.push(s);
      });
    }
    default:
      throw unsupported(`the pre-tokenizer "${type}"`);
  }
}

function preTokenizerOf(p: unknown, info: PreInfo): PreTokenizer {
  if (p === null || p === undefined) return (text) => [text];
  if (!isObject(p)) throw invalid('the pre-tokenizer is not an object');
  const step = preStepOf(p, info);
  return (text, first) => step([text], first);
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

function addedTokensOf(json: Json): AddedToken[] {
  const list = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  return list.map((t) => {
    if (!isObject(t) || typeof t.id !== 'number' || typeof t.content !== 'string') throw invalid('an added token lacks id or content');
    return { id: t.id, content: t.content, special: t.special === true, lstrip: t.lstrip === true, rstrip: t.rstrip === true };
  });
}

/** The special tokens a post-processor puts before and after a single sequence. */
function postProcessorTokens(p: unknown): { before: string[]; after: string[] } {
  const none = { before: [], after: [] };
  if (!isObject(p)) return none;
  const pair = (v: unknown): string | undefined => (Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined);
  switch (p.type) {
    case 'Sequence': {
      for (const q of Array.isArray(p.processors) ? p.processors : []) {
        const r = postProcessorTokens(q);
        if (r.before.length > 0 || r.after.length > 0) return r;
      }
      return none;
    }
    case 'TemplateProcessing': {
      const single = Array.isArray(p.single) ? p.single : [];
      const before: string[] = [];
      const after: string[] = [];
      let seen = false;
      for (const piece of single) {
        if (isObject(piece) && isObject(piece.Sequence)) seen = true;
        else if (isObject(piece) && isObject(piece.SpecialToken) && typeof piece.SpecialToken.id === 'string') {
          (seen ? after : before).push(piece.SpecialToken.id);
        }
      }
      return { before, after };
    }
    case 'BertProcessing':
    case 'RobertaProcessing': {
      const cls = pair(p.cls);
      const sep = pair(p.sep);
      return { before: cls === undefined ? [] : [cls], after: sep === undefined ? [] : [sep] };
    }
    default:
      return none;
  }
}

const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

export function tokenizerFromJson(input: string | object, options: TokenizerJsonOptions = {}): { vocab: Vocab; parts: TokenizerParts } {
  let json: unknown = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (e) {
      throw invalid(`not valid JSON (${(e as Error).message})`);
    }
  }
  if (!isObject(json) || !isObject(json.model)) throw invalid('no "model" object');
  const model = json.model;
  // Old files may lack model.type; the fields tell WordPiece from BPE.
  const modelType =
    typeof model.type === 'string' ? model.type : 'continuing_subword_prefix' in model ? 'WordPiece' : 'merges' in model ? 'BPE' : '';
  if (modelType !== 'BPE' && modelType !== 'WordPiece') throw unsupported(`the model type "${modelType}"`);
  if (!isObject(model.vocab)) throw invalid('model.vocab is not an object of piece -> id');

  // The token table: model vocabulary, then added tokens (which may add ids or restate existing ones).
  const pieces: string[] = [];
  const types: number[] = [];
  for (const [piece, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw invalid(`the id of ${JSON.stringify(piece)}`);
    pieces[id] = piece;
    types[id] = TokenType.normal;
  }
  const added = addedTokensOf(json);
  const attrs = new Map<number, SpecialTokenAttrs>();
  for (const t of added) {
    pieces[t.id] = t.content;
    types[t.id] = t.special ? TokenType.control : TokenType.userDefined;
    if (t.lstrip || t.rstrip) attrs.set(t.id, { lstrip: t.lstrip, rstrip: t.rstrip });
  }
  const byteFallback = modelType === 'BPE' && model.byte_fallback === true;
  for (let i = 0; i < pieces.length; i++) {
    if (pieces[i] === undefined) {
      pieces[i] = `[UNUSED_${i}]`;
      types[i] = TokenType.unused;
    } else if (byteFallback && types[i] === TokenType.normal && BYTE_PIECE.test(pieces[i])) {
      types[i] = TokenType.byte;
    }
  }

  const idOf = (v: string | number | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === 'number') return v;
    const i = pieces.indexOf(v);
    return i >= 0 ? i : undefined;
  };
  const post = postProcessorTokens(json.post_processor);
  const unkPiece = typeof model.unk_token === 'string' ? model.unk_token : undefined;
  const isWordPiece = modelType === 'WordPiece';
  const bos = idOf(options.bos ?? post.before[0]);
  const after = idOf(post.after[0]);
  const eos = idOf(options.eos) ?? (isWordPiece ? undefined : after);
  const vocab = new Vocab({
    model: isWordPiece ? 'bert' : 'gpt2',
    tokens: pieces,
    types,
    bos,
    eos,
    unk: idOf(unkPiece),
    sep: isWordPiece ? after : undefined,
    addBos: options.addBos ?? post.before.length > 0,
    addEos: options.addEos ?? (!isWordPiece && post.after.length > 0),
    addSep: isWordPiece && post.after.length > 0,
    addSpacePrefix: false,
  });

  const info: PreInfo = { byteLevel: false, addsPrefix: false };
  const normalize = normalizerOf(json.normalizer);
  const normalizerPrepends = hasPrepend(json.normalizer);
  const preTokenize = preTokenizerOf(json.pre_tokenizer, info);
  if (!info.byteLevel && isObject(json.decoder) && containsType(json.decoder, 'ByteLevel')) info.byteLevel = true;

  let encoder: TextRunEncoder;
  let renderer: TokenRenderer;
  if (isWordPiece) {
    const prefix = str(model, 'continuing_subword_prefix', '##');
    const maxChars = typeof model.max_input_chars_per_word === 'number' ? model.max_input_chars_per_word : 100;
    const wp = new WordPieceModel(vocab, { kind: 'prefix', prefix }, vocab.unk, maxChars);
    encoder = new WordPieceEncoder(wp, normalize, preTokenize);
    renderer = new WordPieceRenderer(wp);
  } else {
    if (typeof model.continuing_subword_prefix === 'string' && model.continuing_subword_prefix !== '') {
      throw unsupported('BPE with continuing_subword_prefix');
    }
    if (typeof model.end_of_word_suffix === 'string' && model.end_of_word_suffix !== '') throw unsupported('BPE with end_of_word_suffix');
    if (!Array.isArray(model.merges)) throw invalid('model.merges is not an array');
    const bpe = new BpeModel(vocab, model.merges as (string | string[])[], {
      byteLevel: info.byteLevel,
      ignoreMerges: model.ignore_merges === true,
      byteFallback,
      unk: vocab.unk,
      fuseUnk: model.fuse_unk === true,
    });
    encoder = new BpeEncoder(bpe, preTokenize, normalize);
    const strips = info.addsPrefix || normalizerPrepends;
    renderer = info.byteLevel ? new ByteLevelRenderer(vocab, strips) : new SpaceMarkRenderer(vocab, strips);
  }
  return {
    vocab,
    parts: { family: isWordPiece ? 'wordpiece' : 'bpe', encoder, renderer, specialAttrs: attrs.size > 0 ? attrs : undefined },
  };
}

function containsType(o: unknown, type: string): boolean {
  if (!isObject(o)) return false;
  if (o.type === type) return true;
  for (const key of ['decoders', 'pretokenizers', 'normalizers']) {
    const list = o[key];
    if (Array.isArray(list) && list.some((x) => containsType(x, type))) return true;
  }
  return false;
}

function hasPrepend(n: unknown): boolean {
  return containsType(n, 'Prepend');
}
