// loadModel(path, { vocabOnly: true }): the tokenizer and metadata only, also from vocab-only files with no tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../lib/index.js';
import { repoRoot } from '../helpers/fixtures.js';

test('a vocab-only file (no tensors) loads with vocabOnly and tokenizes; compute calls are refused', async () => {
  await using m = await loadModel(join(repoRoot, 'test/fixtures/tokenizer/ggml-vocab-llama-bpe.gguf'), { vocabOnly: true });
  assert.equal(m.vocabOnly, true);
  assert.equal(m.architecture, 'llama');
  const ids = m.tokenize('Hello world', { addBos: false });
  assert.equal(m.detokenize(ids), 'Hello world');
  assert.ok(m.vocabSize > 128000);
  assert.throws(() => m.createContext(), { code: 'INVALID_ARGUMENT', message: /vocabOnly/ });
  assert.throws(() => m.generate('x'), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(async () => m.complete('x'), { code: 'INVALID_ARGUMENT' });
});

test('the same file without vocabOnly is a typed error (it has no weights)', async () => {
  await assert.rejects(loadModel(join(repoRoot, 'test/fixtures/tokenizer/ggml-vocab-llama-bpe.gguf')), (e: { code?: string }) =>
    ['GGUF_MISSING_TENSOR', 'GGUF_MISSING_KEY'].includes(e.code ?? ''),
  );
});

test('vocabOnly on a full model tokenizes like the full load', async () => {
  await using v = await loadModel(undefined, { vocabOnly: true });
  await using f = await loadModel();
  assert.deepEqual([...v.tokenize('Once upon a time')], [...f.tokenize('Once upon a time')]);
  v.dispose();
  assert.throws(() => v.tokenize('x'), { code: 'DISPOSED' });
});

test('tokenize({ addSpecial: false }) adds no special token at all (BERT), addBos is its alias', async () => {
  const path = join(repoRoot, 'test', 'fixtures', 'tokenizer', 'ggml-vocab-bert-bge.gguf');
  await using model = await loadModel(path, { vocabOnly: true });
  const plain = [...model.tokenize('hello world', { addSpecial: false })];
  const full = [...model.tokenize('hello world')];
  assert.equal(full.length, plain.length + 2, 'default: [CLS] ... [SEP]');
  assert.deepEqual(full.slice(1, -1), plain);
  assert.ok(!plain.includes(model.tokenizer.bos!) && !plain.includes(model.tokenizer.sep!));
  assert.deepEqual([...model.tokenize('hello world', { addBos: false })], plain);
  assert.deepEqual([...model.tokenize('hello world', { addBos: false, addSpecial: true })], full, 'addSpecial wins');
  assert.throws(() => model.tokenize('x', { addSpecial: 'no' as never }), { code: 'INVALID_ARGUMENT', message: /addSpecial/ });
});
