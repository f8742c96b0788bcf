// Test helpers: the repo's stories260K model and the tokenizer fixture vocabularies, the conformance vector files
// (NAME.gguf + NAME.gguf.inp + NAME.gguf.out) found in test/fixtures/tokenizer/, and loading them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readGguf } from '../../lib/gguf/index.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';

export const STORIES_PATH = fileURLToPath(new URL('../../models/stories260K.gguf', import.meta.url));
export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/tokenizer/', import.meta.url));
export const LLAMA_SPM_PATH = join(FIXTURE_DIR, 'ggml-vocab-llama-spm.gguf');

const cache = new Map<string, Promise<Tokenizer>>();

export function loadTokenizer(path: string): Promise<Tokenizer> {
  let t = cache.get(path);
  if (t === undefined) {
    t = readGguf(path).then((f) => Tokenizer.fromGguf(f.metadata));
    cache.set(path, t);
  }
  return t;
}

export interface VectorFile {
  /** The family name: the file name without 'ggml-vocab-' and '.gguf' ('llama-bpe'). */
  name: string;
  /** Path of the .gguf file; the vectors are at path + '.inp' and path + '.out'. */
  path: string;
}

/** Every NAME.gguf in the fixture folder that has both NAME.gguf.inp and NAME.gguf.out, sorted by name. */
export function vectorFiles(): VectorFile[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.gguf') && existsSync(join(FIXTURE_DIR, f + '.inp')) && existsSync(join(FIXTURE_DIR, f + '.out')))
    .sort()
    .map((f) => ({ name: f.replace(/^ggml-vocab-/, '').replace(/\.gguf$/, ''), path: join(FIXTURE_DIR, f) }));
}

export interface Vector {
  input: string;
  /** The expected ids as the .out file writes them: ' 1 2 3', '' for none. */
  expected: string;
}

/**
 * The test strings and expected ids of a vector file pair. The .inp file is the inputs, each followed by
 * "\n__ggml_vocab_test__\n"; the .out file has one line per input.
 */
export function readVectors(path: string): Vector[] {
  const inputs = readFileSync(path + '.inp', 'utf8').split('\n__ggml_vocab_test__\n');
  if (inputs.pop() !== '') throw new Error(`${path}.inp does not end with the separator`);
  const lines = readFileSync(path + '.out', 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length !== inputs.length) throw new Error(`${path}.out has ${lines.length} lines for ${inputs.length} inputs`);
  return inputs.map((input, i) => ({ input, expected: lines[i] }));
}

/** Ids in the .out format. */
export function formatIds(ids: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < ids.length; i++) s += ` ${ids[i]}`;
  return s;
}

/** The add_special_tokens=False encoding: no BOS/EOS/SEP, special-token text as plain text. */
export const PLAIN = { addBos: false, addEos: false, addSep: false, special: false } as const;
