// Tokenization speed: our tokenizer and node-llama-cpp's (llama.cpp's) on the same text and vocabulary files, in the
// same run, and whether their token ids agree. Used by `open-autoglm bench --tokenize` and `npm run bench --
// --tokenize`; tests never time anything.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AglmError } from '../errors.js';
import { readGguf, type GgufMetadata } from '../gguf/index.js';
import { packageRoot } from '../package-root.js';
import { Tokenizer } from '../tokenizer/index.js';
import { benchStat, type BenchStat } from './bench.js';

/** The part of node-llama-cpp's API the tokenizer benchmark calls (typed locally: it is not a dependency). */
export interface PeerTokenizerLlama {
  loadModel(options: { modelPath: string; vocabOnly: boolean }): Promise<{
    tokenize(text: string, specialTokens?: boolean): readonly number[];
    dispose(): Promise<void>;
  }>;
}

export interface TokenizeBenchOptions {
  /** Vocabulary (or model) GGUF files, one row each. */
  models: string[];
  text: string;
  /** Timed runs per engine and file, alternating. Default 3. */
  repetitions?: number;
  /** node-llama-cpp's `getLlama()` result; without it only ours is measured. */
  peer?: PeerTokenizerLlama;
  onProgress?: (line: string) => void;
}

export interface TokenizeMismatch {
  /** First index where the id sequences differ. */
  firstIndex: number;
  /** Lines of the text (cut at '\n') whose ids differ when each line is tokenized alone, and how many lines. */
  linesDiffering: number;
  lines: number;
  /** The first differing line and its ids in both engines (for the report). */
  example?: { line: string; ours: number[]; peer: number[] };
}

export interface TokenizeBenchRow {
  /** File name without 'ggml-vocab-' and '.gguf'. */
  name: string;
  path: string;
  family: string;
  preTokenizer?: string;
  bytes: number;
  tokens: number;
  /** MB/s (10^6 bytes of UTF-8 text per second) of each timed run. */
  ours: BenchStat;
  peer?: BenchStat;
  peerTokens?: number;
  /** Median ours / median peer. */
  ratio?: number;
  /** Whether the two engines gave the same ids for the whole text. */
  agree?: boolean;
  mismatch?: TokenizeMismatch;
  /** Why the peer has no numbers for this file. */
  peerError?: string;
}

/** The add_special_tokens=False encoding both engines are asked for: no BOS/EOS/SEP, special-token text as text. */
const PLAIN = { addBos: false, addEos: false, addSep: false, special: false } as const;

/**
 * `bytes` bytes (UTF-8, cut at a character boundary) of text made deterministically from `sources`: lines drawn at
 * random (xorshift32, `seed`), and one word in four (a run of 3 or more letters) with two neighbouring letters swapped,
 * so the text holds many words that occur nowhere else, as real text does (a per-word cache cannot hold it all).
 */
export function tokenizeBenchText(sources: string[], bytes = 1_000_000, seed = 1): string {
  const lines = sources.flatMap((s) => s.split(/(?<=\n)/)).filter((l) => l.length > 0);
  if (lines.length === 0) return '';
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
  const parts: string[] = [];
  let total = 0;
  while (total < bytes) {
    const line = lines[next() % lines.length].replace(/\p{L}{3,}/gu, (w) => {
      if ((next() & 3) !== 0) return w;
      const cps = Array.from(w);
      const i = next() % (cps.length - 1);
      [cps[i], cps[i + 1]] = [cps[i + 1], cps[i]];
      return cps.join('');
    });
    parts.push(line);
    total += Buffer.byteLength(line);
  }
  return cutUtf8(parts.join(''), bytes);
}

const FIXTURES = join(packageRoot, 'test', 'fixtures');
/** The repository's tokenizer fixtures: the test vocabularies (one per family) and the mixed-script text. */
const TOKENIZER_FIXTURES = join(FIXTURES, 'tokenizer');
const DEFAULT_SOURCES = [join(TOKENIZER_FIXTURES, 'mixed-script.txt'), join(FIXTURES, 'text', 'stories-eval.txt')];

function missingFixtures(what: string): AglmError {
  return new AglmError(
    'FILE_NOT_FOUND',
    `The default ${what} of the tokenizer benchmark are the repository's test fixtures, which are not here (${TOKENIZER_FIXTURES}): pass --text FILE and --model FILE`,
  );
}

/**
 * The benchmark's default text: 1 MB made by tokenizeBenchText from the repository's mixed-script fixture (English,
 * CJK, Japanese, Korean, emoji, combining marks, code, odd whitespace) and its children's story text.
 */
export function defaultTokenizeBenchText(bytes = 1_000_000): string {
  if (!DEFAULT_SOURCES.every((f) => existsSync(f))) throw missingFixtures('text');
  return tokenizeBenchText(DEFAULT_SOURCES.map((f) => readFileSync(f, 'utf8')), bytes);
}

/** The benchmark's default vocabularies: every ggml-vocab-*.gguf of the repository's tokenizer fixtures. */
export function defaultTokenizeBenchModels(): string[] {
  if (!existsSync(TOKENIZER_FIXTURES)) throw missingFixtures('vocabularies');
  return readdirSync(TOKENIZER_FIXTURES)
    .filter((f) => /^ggml-vocab-.*\.gguf$/.test(f))
    .sort()
    .map((f) => join(TOKENIZER_FIXTURES, f));
}

/** The longest prefix of `s` with at most `bytes` UTF-8 bytes. */
function cutUtf8(s: string, bytes: number): string {
  const buf = Buffer.from(s);
  if (buf.length <= bytes) return s;
  let end = bytes;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function sameIds(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** Where the engines disagree: the first differing id, and the text's lines that tokenize differently on their own. */
function describeMismatch(
  tokenizer: Tokenizer,
  peerTokenize: (s: string) => readonly number[],
  text: string,
  ours: Uint32Array,
  peer: readonly number[],
): TokenizeMismatch {
  const lines = [...new Set(text.split('\n'))].filter((l) => l.length > 0);
  let linesDiffering = 0;
  let example: TokenizeMismatch['example'];
  for (const line of lines) {
    const a = tokenizer.encode(line, PLAIN);
    const b = peerTokenize(line);
    if (sameIds(a, b)) continue;
    linesDiffering++;
    example ??= { line, ours: Array.from(a), peer: Array.from(b) };
  }
  return { firstIndex: firstDifference(ours, peer), linesDiffering, lines: lines.length, example };
}

/**
 * For each file: loads both tokenizers (untimed), encodes the text once with each (warm-up), then `repetitions` timed
 * encodes per engine, alternating. Each of our timed runs uses a tokenizer built afresh from the parsed metadata, so
 * its word cache starts empty (the peer keeps none); the peer's runs include copying its ids into a JS array, as
 * `model.tokenize()` returns them.
 */
export async function runTokenizeBench(options: TokenizeBenchOptions): Promise<TokenizeBenchRow[]> {
  const reps = options.repetitions ?? 3;
  const { text } = options;
  const bytes = Buffer.byteLength(text);
  const rows: TokenizeBenchRow[] = [];
  for (const path of options.models) {
    const meta: GgufMetadata = (await readGguf(path)).metadata;
    const name = basename(path).replace(/^ggml-vocab-/, '').replace(/\.gguf$/, '');
    let tokenizer = Tokenizer.fromGguf(meta);
    let ours = tokenizer.encode(text, PLAIN);
    const row: TokenizeBenchRow = {
      name,
      path,
      family: tokenizer.family,
      preTokenizer: tokenizer.preTokenizer,
      bytes,
      tokens: ours.length,
      ours: benchStat([]),
    };
    let peerModel: Awaited<ReturnType<PeerTokenizerLlama['loadModel']>> | undefined;
    try {
      peerModel = await options.peer?.loadModel({ modelPath: path, vocabOnly: true });
    } catch (e) {
      row.peerError = e instanceof Error ? e.message.split('\n')[0] : String(e);
    }
    try {
      const peerTokenize = peerModel ? (s: string) => peerModel.tokenize(s, false) : undefined;
      let peerIds = peerTokenize?.(text);
      const oursMBs: number[] = [];
      const peerMBs: number[] = [];
      for (let r = 0; r < reps; r++) {
        tokenizer = Tokenizer.fromGguf(meta);
        let t0 = performance.now();
        ours = tokenizer.encode(text, PLAIN);
        oursMBs.push(bytes / 1e3 / (performance.now() - t0));
        if (peerTokenize) {
          t0 = performance.now();
          peerIds = peerTokenize(text);
          peerMBs.push(bytes / 1e3 / (performance.now() - t0));
        }
      }
      row.ours = benchStat(oursMBs);
      row.tokens = ours.length;
      if (peerTokenize && peerIds) {
        row.peer = benchStat(peerMBs);
        row.peerTokens = peerIds.length;
        row.ratio = median(oursMBs) / median(peerMBs);
        row.agree = sameIds(ours, peerIds);
        if (!row.agree) row.mismatch = describeMismatch(tokenizer, peerTokenize, text, ours, peerIds);
      }
    } finally {
      await peerModel?.dispose();
    }
    const peerPart = row.peer
      ? `, peer ${median(row.peer.samples).toFixed(2)} MB/s, ratio ${row.ratio!.toFixed(2)}, ids ${row.agree ? 'agree' : 'DIFFER'}`
      : row.peerError ? `, peer failed: ${row.peerError}` : '';
    options.onProgress?.(`${name}: ours ${median(row.ours.samples).toFixed(2)} MB/s${peerPart}\n`);
    rows.push(row);
  }
  return rows;
}

/** The markdown table of a tokenizer benchmark (medians). */
export function tokenizeBenchTable(rows: TokenizeBenchRow[]): string {
  const head = ['vocabulary', 'family', 'tokens', 'ours MB/s', 'peer MB/s', 'ratio', 'ids'];
  const body = rows.map((r) => [
    r.name,
    r.family + (r.preTokenizer ? ` (${r.preTokenizer})` : ''),
    String(r.tokens),
    median(r.ours.samples).toFixed(2),
    r.peer ? median(r.peer.samples).toFixed(2) : '',
    r.ratio !== undefined ? r.ratio.toFixed(2) : '',
    r.agree === undefined
      ? r.peerError ? 'peer failed' : ''
      : r.agree
        ? 'identical'
        : `differ from token ${r.mismatch!.firstIndex} (${r.mismatch!.linesDiffering} of ${r.mismatch!.lines} lines)`,
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |\n`;
  return line(head) + `|---|---|---:|---:|---:|---:|---|\n` + body.map(line).join('');
}
