// SentencePiece BPE encoding ('llama' tokenizer model): score-ordered merges of UTF-8 characters, with byte fallback.
import { AglmError } from '../errors.js';
import { BigramQueue } from './bigram-queue.js';
import { TokenType, type Vocab } from './vocab.js';

/** SentencePiece's visible stand-in for a space. */
export const SPACE_MARK = '\u2581';

const utf8 = new TextEncoder();

/** Pieces the encoder may produce from text: normal and user-defined tokens (never control, byte or unused ones). */
function textId(vocab: Vocab, piece: string): number | undefined {
  const id = vocab.idOf(piece);
  if (id === undefined) return undefined;
  const type = vocab.type(id);
  return type === TokenType.normal || type === TokenType.userDefined ? id : undefined;
}

/** The linked list of symbols being merged: each symbol is a slice [start, start+len) of the escaped text. */
interface Symbols {
  start: Int32Array;
  len: Int32Array;
  prev: Int32Array;
  next: Int32Array;
}

function splitCharacters(s: string): Symbols {
  const starts: number[] = [];
  for (let i = 0; i < s.length; ) {
    starts.push(i);
    i += s.codePointAt(i)! > 0xffff ? 2 : 1;
  }
  const n = starts.length;
  const sym: Symbols = {
    start: Int32Array.from(starts),
    len: new Int32Array(n),
    prev: new Int32Array(n),
    next: new Int32Array(n),
  };
  for (let i = 0; i < n; i++) {
    sym.len[i] = (i + 1 < n ? starts[i + 1] : s.length) - starts[i];
    sym.prev[i] = i - 1;
    sym.next[i] = i + 1 < n ? i + 1 : -1;
  }
  return sym;
}

/** Merges symbols until no adjacent pair forms a vocabulary piece; highest score first, leftmost on ties. */
function mergeSymbols(vocab: Vocab, s: string, sym: Symbols): void {
  const queue = new BigramQueue();
  const tryAdd = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const size = sym.len[left] + sym.len[right];
    const id = textId(vocab, s.slice(sym.start[left], sym.start[left] + size));
    if (id !== undefined) queue.push({ left, right, score: vocab.score(id), size });
  };
  for (let i = 1; i < sym.start.length; i++) tryAdd(i - 1, i);
  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    const { left, right } = b;
    // Stale entry: one side was merged away or grew since this bigram was queued.
    if (sym.len[left] === 0 || sym.len[right] === 0 || sym.len[left] + sym.len[right] !== b.size) continue;
    sym.len[left] = b.size;
    sym.len[right] = 0;
    sym.next[left] = sym.next[right];
    if (sym.next[right] >= 0) sym.prev[sym.next[right]] = left;
    tryAdd(sym.prev[left], left);
    tryAdd(left, sym.next[left]);
  }
}

/** Emits the byte tokens of a piece missing from the vocabulary, or UNK when the vocabulary has no byte tokens. */
function emitFallback(vocab: Vocab, piece: string, out: number[]): void {
  const bytes = utf8.encode(piece);
  const ids: number[] = [];
  for (const b of bytes) {
    const id = vocab.byteId(b);
    if (id === undefined) break;
    ids.push(id);
  }
  if (ids.length === bytes.length) out.push(...ids);
  else if (vocab.unk !== undefined) out.push(vocab.unk);
  else {
    const what = JSON.stringify(piece);
    throw new AglmError('INVALID_ARGUMENT', `The vocabulary cannot encode ${what}: it has no byte tokens and no unknown token`);
  }
}

/** The ids of one escaped segment, merged as a whole. */
function encodeSegment(vocab: Vocab, s: string, out: number[]): void {
  const sym = splitCharacters(s);
  mergeSymbols(vocab, s, sym);
  for (let i = 0; i >= 0; i = sym.next[i]) {
    const piece = s.slice(sym.start[i], sym.start[i] + sym.len[i]);
    const id = textId(vocab, piece);
    if (id !== undefined) out.push(id);
    else emitFallback(vocab, piece, out);
  }
}

/**
 * Per vocabulary: whether text may be cut before every '▁' that follows another character. That is exact when no
 * piece the encoder can produce has a '▁' after another character (SentencePiece splits on whitespace when it trains,
 * so its pieces only have '▁' at the start): no merge can then cross such a cut, and each segment merges on its own
 * exactly as it would inside the whole text. The segments' ids are cached.
 */
interface SegmentState {
  readonly cuttable: boolean;
  readonly cache: Map<string, number[]>;
}

const segmentStates = new WeakMap<Vocab, SegmentState>();
const CACHE_LIMIT = 50_000;
const CACHE_SEGMENT_LIMIT = 64;

function segmentState(vocab: Vocab): SegmentState {
  let st = segmentStates.get(vocab);
  if (st === undefined) {
    let cuttable = true;
    for (let id = 0; id < vocab.size && cuttable; id++) {
      const t = vocab.type(id);
      if ((t === TokenType.normal || t === TokenType.userDefined) && /[^\u2581]\u2581/.test(vocab.piece(id))) cuttable = false;
    }
    st = { cuttable, cache: new Map() };
    segmentStates.set(vocab, st);
  }
  return st;
}

/** Escapes spaces as '▁', optionally prepends one, and appends the SentencePiece BPE ids of `text` to `out`. */
export function encodeSpm(vocab: Vocab, text: string, addSpacePrefix: boolean, out: number[]): void {
  if (text.length === 0) return;
  const s = (addSpacePrefix ? SPACE_MARK : '') + text.replaceAll(' ', SPACE_MARK);
  const st = segmentState(vocab);
  if (!st.cuttable) {
    encodeSegment(vocab, s, out);
    return;
  }
  let start = 0;
  for (let i = 1; i <= s.length; i++) {
    if (i < s.length && !(s.charCodeAt(i) === 0x2581 && s.charCodeAt(i - 1) !== 0x2581)) continue;
    const seg = s.slice(start, i);
    start = i;
    if (seg.length > CACHE_SEGMENT_LIMIT) {
      encodeSegment(vocab, seg, out);
      continue;
    }
    let ids = st.cache.get(seg);
    if (ids === undefined) {
      ids = [];
      encodeSegment(vocab, seg, ids);
      if (st.cache.size >= CACHE_LIMIT) st.cache.clear();
      st.cache.set(seg, ids);
    }
    for (let k = 0; k < ids.length; k++) out.push(ids[k]);
  }
}
