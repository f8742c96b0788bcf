// `open-autoglm bench --tokenize`: the benchmark text is deterministic and the command reports each vocabulary's
// tokens (speed itself is measured by the benchmark, never asserted here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../lib/cli/main.js';
import { defaultTokenizeBenchText, tokenizeBenchText } from '../../lib/tools/tokenize-bench.js';
import { FIXTURE_DIR, loadTokenizer, PLAIN } from '../tokenizer/load.js';

test('the benchmark text: deterministic, the size asked for, words found nowhere else', () => {
  const src = 'The quick brown fox jumps over the lazy dog.\n中文 テキスト 한국어 é\u0301 🦙\n';
  const a = tokenizeBenchText([src], 20_000);
  assert.equal(a, tokenizeBenchText([src], 20_000));
  assert.notEqual(a, tokenizeBenchText([src], 20_000, 2));
  const bytes = Buffer.byteLength(a);
  assert.ok(bytes <= 20_000 && bytes > 20_000 - 4, `${bytes} bytes`);
  assert.match(a, /\bqiuck\b|\bqucik\b|\buqick\b|\bquikc\b/, 'some words have two neighbouring letters swapped');
  assert.equal(Buffer.byteLength(defaultTokenizeBenchText()), 1_000_000);
});

test('bench --tokenize --no-peer --json: one row per vocabulary with our token count', async () => {
  let out = '';
  let err = '';
  const io = { out: (s: string) => (out += s), err: (s: string) => (err += s) };
  const spm = join(FIXTURE_DIR, 'ggml-vocab-llama-spm.gguf');
  const bert = join(FIXTURE_DIR, 'ggml-vocab-bert-bge.gguf');
  const text = join(FIXTURE_DIR, 'mixed-script.txt');
  const code = await main(['bench', '--tokenize', '--no-peer', '--json', '-r', '1', '--text', text, '--model', spm, '--model', bert], io);
  assert.equal(code, 0, err);
  const { rows } = JSON.parse(out) as { rows: { name: string; family: string; tokens: number; ours: { samples: number[] }; peer?: unknown }[] };
  assert.deepEqual(rows.map((r) => [r.name, r.family]), [['llama-spm', 'spm'], ['bert-bge', 'wordpiece']]);
  const s = readFileSync(text, 'utf8');
  assert.equal(rows[0].tokens, (await loadTokenizer(spm)).encode(s, PLAIN).length);
  assert.equal(rows[1].tokens, (await loadTokenizer(bert)).encode(s, PLAIN).length);
  for (const r of rows) {
    assert.equal(r.ours.samples.length, 1);
    assert.equal(r.peer, undefined);
  }
  const bad = await main(['bench', '--tokenize', '--no-peer', '-r', 'x'], io);
  assert.equal(bad, 1);
});
