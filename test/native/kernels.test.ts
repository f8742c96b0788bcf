// Builds the native kernel test project (native/tests) into build/kernel-tests with cmake and runs it: every CPU
// variant this machine supports must match the scalar reference within the stated tolerances.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const buildDir = join(root, 'build', 'kernel-tests');
const exe = join(buildDir, process.platform === 'win32' ? 'Release/aglm-kernel-tests.exe' : 'aglm-kernel-tests');

function run(cmd: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

function tail(r: SpawnSyncReturns<string>): string {
  return `${r.error ?? ''}\n${r.stdout ?? ''}\n${r.stderr ?? ''}`.slice(-6000);
}

test('native CPU kernels match the scalar reference', { timeout: 30 * 60 * 1000 }, () => {
  const configure = run('cmake', ['-S', 'native/tests', '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release']);
  assert.equal(configure.status, 0, `cmake configure failed:${tail(configure)}`);
  const jobs = String(Math.max(1, availableParallelism()));
  const build = run('cmake', ['--build', buildDir, '--config', 'Release', '-j', jobs]);
  assert.equal(build.status, 0, `cmake build failed:${tail(build)}`);
  assert.ok(existsSync(exe), `missing ${exe}`);

  const r = run(exe, []);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout ?? '');
  assert.ok(summary, `no summary line in the output:${tail(r)}`);
  const failures = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('FAIL'));
  assert.equal(summary[2], '0', `kernel checks failed:\n${failures.join('\n')}`);
  assert.equal(r.status, 0, `aglm-kernel-tests exited with ${r.status}:${tail(r)}`);
  assert.ok(Number(summary[1]) > 0, 'no checks ran');
});
