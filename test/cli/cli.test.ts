// The command line: run streams the reference greedy text, info prints the system report, bad usage is exit 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../lib/cli/main.js';
import { greedyReference } from '../helpers/fixtures.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

test('run streams the greedy reference completion to stdout', async () => {
  const ref = greedyReference();
  const r = await cli(['run', '-n', '64', '--temperature', '0', ref.prompt]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, ref.text + '\n');
});

test('run with a seed is reproducible and --cpu picks the variant', async () => {
  const a = await cli(['run', '-n', '40', '--seed', '42', '--temperature', '0.9', '--cpu', 'ref', 'Once upon a time']);
  const b = await cli(['run', '-n', '40', '--seed', '42', '--temperature', '0.9', 'Once upon a time']);
  const c = await cli(['run', '-n', '40', '--seed', '43', '--temperature', '0.9', 'Once upon a time']);
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
  assert.notEqual(a.out, c.out);
});

test('info lists the CPU features, variants and the choice', async () => {
  const r = await cli(['info']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /CPU features: /);
  assert.match(r.out, /ref\s+runs here/);
  assert.match(r.out, /Chosen: cpu \/ \w+: /);
  const j = await cli(['info', '--json']);
  const info = JSON.parse(j.out);
  assert.equal(info.chosen.backend, 'cpu');
  // Where the amx table runs without AMX tiles (AVX-512 VNNI/BF16 only), the report must not suggest AMX.
  const amx = info.cpuVariants.find((v: { name: string }) => v.name === 'amx');
  const amxLine = r.out.split('\n').find((l: string) => /^\s+amx\s/.test(l)) ?? '';
  if (amx?.available && !info.cpu.features.includes('amx-tile')) assert.match(amxLine, /no AMX tiles on this CPU/);
  else assert.doesNotMatch(amxLine, /no AMX tiles/);
});

test('bad usage exits 2 with the usage text; bad values exit 1 with a typed error', async () => {
  assert.equal((await cli(['frobnicate'])).code, 2);
  assert.equal((await cli(['run'])).code, 2);
  assert.equal((await cli(['run', '--bogus', 'x'])).code, 2);
  const r = await cli(['run', '-n', 'many', 'x']);
  assert.equal(r.code, 1);
  assert.match(r.err, /INVALID_ARGUMENT/);
  const m = await cli(['run', '--model', '/no/such.gguf', 'x']);
  assert.equal(m.code, 1);
  assert.match(m.err, /FILE_NOT_FOUND/);
});
