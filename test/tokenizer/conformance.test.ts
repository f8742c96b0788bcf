// Conformance: for every vocabulary in test/fixtures/tokenizer/ with vector files (NAME.gguf, NAME.gguf.inp,
// NAME.gguf.out; see SOURCES.md there), every input must encode to exactly the expected ids. The expected ids are what
// Hugging Face `tokenizers` gives for encode(text, add_special_tokens=False). Dropping a new triple into the folder
// adds a family here with no code change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGguf } from '../../lib/gguf/index.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import { formatIds, PLAIN, readVectors, vectorFiles } from './load.js';

const files = vectorFiles();

test('the fixture folder has conformance vector files', () => {
  assert.ok(files.length > 0, 'no NAME.gguf + .inp + .out triples found');
});

for (const { name, path } of files) {
  test(`${name}: every conformance vector encodes to exactly the expected ids`, async (t) => {
    const gguf = await readGguf(path);
    assert.equal(gguf.tensors.length, 0, 'a vocab-only file');
    const tok = Tokenizer.fromGguf(gguf.metadata);
    const vectors = readVectors(path);
    let passed = 0;
    let firstMismatch: string | undefined;
    for (const { input, expected } of vectors) {
      const got = formatIds(tok.encode(input, PLAIN));
      if (got === expected) passed++;
      else firstMismatch ??= `input ${JSON.stringify(input)}\n  expected:${expected}\n  received:${got}`;
    }
    const kind = tok.preTokenizer === undefined ? tok.family : `${tok.family}, pre-tokenizer ${tok.preTokenizer}`;
    t.diagnostic(`${name} (${kind}): ${passed}/${vectors.length}`);
    assert.equal(passed, vectors.length, `${name}: ${passed}/${vectors.length} vectors match; first mismatch:\n${firstMismatch}`);
  });
}
