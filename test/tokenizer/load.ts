// Test helper: loads the tokenizers of the repo's stories260K model and the llama-spm fixture vocabulary.
import { fileURLToPath } from 'node:url';
import { readGguf } from '../../lib/gguf/index.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';

export const STORIES_PATH = fileURLToPath(new URL('../../models/stories260K.gguf', import.meta.url));
export const LLAMA_SPM_PATH = fileURLToPath(new URL('../fixtures/tokenizer/ggml-vocab-llama-spm.gguf', import.meta.url));

const cache = new Map<string, Promise<Tokenizer>>();

export function loadTokenizer(path: string): Promise<Tokenizer> {
  let t = cache.get(path);
  if (t === undefined) {
    t = readGguf(path).then((f) => Tokenizer.fromGguf(f.metadata));
    cache.set(path, t);
  }
  return t;
}
