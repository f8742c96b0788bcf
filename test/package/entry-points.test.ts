// The built package (dist/) works as ESM and as CommonJS, and its types entry exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../lib/index.js';
import { ensureDist, repoRoot } from '../helpers/fixtures.js';

const script = (load: string) => `${load}
  const m = await api.loadModel();
  const r = await m.complete('Once upon a time', { maxTokens: 8, temperature: 0 });
  m.dispose();
  console.log(JSON.stringify({ text: r.text, code: new api.AglmError('ABORTED', 'x').code }));`;

test('ESM import and CommonJS require of the package both generate what the sources do', async () => {
  ensureDist();
  const esm = spawnSync(process.execPath, ['--input-type=module', '-e', script("const api = await import('open-autoglm');")], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(esm.status, 0, esm.stderr);
  const cjs = spawnSync(process.execPath, ['--input-type=commonjs', '-e', `(async () => { ${script("const api = require('open-autoglm');")} })().catch((e) => { console.error(e); process.exit(1); });`], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(cjs.status, 0, cjs.stderr);
  const a = JSON.parse(esm.stdout);
  assert.deepEqual(JSON.parse(cjs.stdout), a);
  await using model = await loadModel();
  assert.equal(a.text, (await model.complete('Once upon a time', { maxTokens: 8, temperature: 0 })).text);
  assert.equal(a.code, 'ABORTED');
  for (const f of ['index.d.ts', 'index.d.cts', 'index.js', 'index.cjs']) assert.ok(existsSync(join(repoRoot, 'dist', f)), f);
});
