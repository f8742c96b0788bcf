// Measures encode/decode speed per tokenizer family on the fixture vocabularies (not a test: no assertions).
// Usage: npx tsx test/tokenizer/measure-speed.ts [TEXT_FILE]
// Without a file it uses English prose made from the conformance inputs and mixed-script.txt, repeated to ~2 MB
// (repetition favours the word caches; pass a large real text file for a fairer figure).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGguf } from '../../lib/gguf/index.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import { FIXTURE_DIR, PLAIN, vectorFiles } from './load.js';

const file = process.argv[2];
const text = file !== undefined ? readFileSync(file, 'utf8') : defaultText();
const bytes = Buffer.byteLength(text);
console.log(`${(bytes / 1e6).toFixed(2)} MB of text, best of 3 runs`);

function defaultText(): string {
  const mixed = readFileSync(join(FIXTURE_DIR, 'mixed-script.txt'), 'utf8');
  let s = '';
  while (s.length < 2_000_000) s += mixed;
  return s;
}

function best(f: () => void): number {
  let min = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    f();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

for (const { name, path } of vectorFiles()) {
  const meta = (await readGguf(path)).metadata;
  let tok: Tokenizer | undefined;
  const load = best(() => (tok = Tokenizer.fromGguf(meta)));
  const t = tok!;
  let ids: Uint32Array = new Uint32Array(0);
  const enc = best(() => (ids = t.encode(text, PLAIN)));
  const dec = best(() => t.decode(ids));
  console.log(
    `${name.padEnd(14)} ${t.family.padEnd(9)} load ${load.toFixed(0).padStart(4)} ms  encode ${(bytes / enc / 1000).toFixed(2).padStart(6)} MB/s  ` +
      `decode ${(bytes / dec / 1000).toFixed(1).padStart(6)} MB/s  (${ids.length} tokens)`,
  );
}
