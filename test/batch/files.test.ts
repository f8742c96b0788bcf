// Batch files: lines read as bytes arrive (CRLF, BOM, blank lines, a last line without "\n", characters split between
// chunks); an output file before a resumed run (its ids and line errors; a torn last line cut off; a file that is not
// ours refused untouched); result lines appended one write each; the pending-line count for the progress total.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { countPendingLines, prepareOutput, readLines, ResultWriter, type BatchResultLine } from '../../lib/batch/index.js';
import { tempDir } from '../helpers/fixtures.js';

async function all(source: string | NodeJS.ReadableStream): Promise<string[]> {
  const out: string[] = [];
  for await (const l of readLines(source)) out.push(l);
  return out;
}

const result = (customId: string | null, line?: number): BatchResultLine => ({
  id: 'batch_req_' + 'x'.repeat(24),
  custom_id: customId,
  response: line === undefined ? { status_code: 200, request_id: '0'.repeat(32), body: { ok: true } } : null,
  error: line === undefined ? null : { code: 'invalid_json_line', message: 'no', param: null, line },
});

test('readLines: every line, CRLF and BOM removed, characters split across chunks, the last line without newline', async (t) => {
  const text = '\ufeff{"a":1}\r\n\n  \nnaïve – 😀\nlast';
  const bytes = Buffer.from(text, 'utf8');
  // One byte per chunk: every multi-byte character is split.
  const chunks = [...bytes].map((b) => Buffer.from([b]));
  assert.deepEqual(await all(Readable.from(chunks)), ['{"a":1}', '', '  ', 'naïve – 😀', 'last']);
  const file = join(tempDir(t), 'in.jsonl');
  writeFileSync(file, text + '\n');
  assert.deepEqual(await all(file), ['{"a":1}', '', '  ', 'naïve – 😀', 'last']);
  writeFileSync(file, '');
  assert.deepEqual(await all(file), []);
});

test('prepareOutput: none yet; ids and line errors; a torn last line cut off; a foreign file refused untouched', async (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'out.jsonl');
  assert.deepEqual(await prepareOutput(out), { skip: new Set(), skipLines: new Set(), results: 0, repairedBytes: 0 });

  const lines = [result('a'), result(null, 4), result('b', 9), result('c')].map((r) => JSON.stringify(r) + '\n').join('');
  const torn = JSON.stringify(result('d')).slice(0, 37);
  writeFileSync(out, lines + torn);
  const s = await prepareOutput(out);
  assert.deepEqual(s, { skip: new Set(['a', 'c']), skipLines: new Set([4, 9]), results: 4, repairedBytes: Buffer.byteLength(torn) });
  assert.equal(readFileSync(out, 'utf8'), lines);
  assert.deepEqual(await prepareOutput(out), { ...s, repairedBytes: 0 }, 'a second look changes nothing');

  const foreign = 'id,name\n1,x\n';
  writeFileSync(out, foreign);
  await assert.rejects(prepareOutput(out), { code: 'INVALID_ARGUMENT', message: /line 1 is not a batch result line/ });
  assert.equal(readFileSync(out, 'utf8'), foreign);
});

test('ResultWriter appends whole lines; countPendingLines counts what a run will not skip', async (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'out.jsonl');
  writeFileSync(out, JSON.stringify(result('a')) + '\n');
  const w = await ResultWriter.open(out);
  await w.write(result('b'));
  await w.write(result('ü'.repeat(5000)));
  await w.close();
  const got = readFileSync(out, 'utf8').split('\n');
  assert.equal(got.length, 4);
  assert.equal(got[3], '');
  assert.deepEqual(got.slice(0, 3).map((l) => JSON.parse(l).custom_id), ['a', 'b', 'ü'.repeat(5000)]);

  const input = join(dir, 'in.jsonl');
  const req = (id: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/completions', body: { prompt: 'x' } });
  writeFileSync(input, [req('a'), '', req('b'), 'not json', req('a'), req('c')].join('\n'));
  assert.equal(await countPendingLines(input, new Set(), new Set()), 5);
  // a is done (its duplicate on line 5 still gets a line error), line 4's error is written.
  assert.equal(await countPendingLines(input, new Set(['a']), new Set([4])), 3);
});
