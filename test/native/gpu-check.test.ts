// scripts/gpu-check.sh, the prepared GPU check, runs for real only on a machine with an NVIDIA GPU (and degraded, on
// lavapipe, in a minute or two by hand); here only what is cheap: the shell script parses, and its TypeScript steps
// load (every import resolves) and refuse a bad command line with their usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';

test('gpu-check.sh parses; gpu-check.mts loads and prints its usage for a bad command line', (t) => {
  if (process.platform === 'win32') return t.skip('a bash script');
  const sh = spawnSync('bash', ['-n', join(repoRoot, 'scripts', 'gpu-check.sh')], { encoding: 'utf8' });
  assert.equal(sh.status, 0, sh.stderr);
  const mts = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts', 'gpu-check.mts'), 'nonsense'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  assert.equal(mts.status, 2, mts.stderr);
  assert.match(mts.stderr, /usage: tsx scripts\/gpu-check\.mts golden BACKEND OUT\.json \| model SHAPE TYPE OUT\.gguf \| bench/);
});
