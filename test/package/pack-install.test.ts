// `npm pack`, then installing the tarball into an empty folder and running `npx open-autoglm run` works with no
// compiler, CMake or make on PATH: the install picks the prebuilt addon from prebuilds/ and never builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { greedyReference, repoRoot, tempDir } from '../helpers/fixtures.js';

function npmCli(): string {
  // npm's own entry scripts, found next to the npm on PATH (its real path, through the bin symlink).
  const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  return join(dirname(realpathSync(which)));
}

test('the packed tarball installs and runs with no compiler on PATH', { timeout: 600_000 }, (t) => {
  const work = tempDir(t, 'aglm-pack-');
  const pack = spawnSync('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env } });
  assert.equal(pack.status, 0, pack.stderr);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote a tarball');

  // A PATH holding node and a shell (npm runs lifecycle scripts with sh) alone: no cc, c++, g++, clang, cmake, make.
  const bin = join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  const npmDir = npmCli();
  const env = { HOME: process.env.HOME ?? work, PATH: bin, npm_config_cache: process.env.npm_config_cache ?? join(process.env.HOME ?? work, '.npm') };
  for (const tool of ['cc', 'c++', 'g++', 'gcc', 'clang', 'cmake', 'make']) {
    assert.notEqual(spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env }).status, 0, `${tool} must not be on PATH`);
  }
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  const install = spawnSync(process.execPath, [join(npmDir, 'npm-cli.js'), 'install', '--no-audit', '--no-fund', join(work, tarball)], {
    cwd: app,
    env,
    encoding: 'utf8',
  });
  assert.equal(install.status, 0, install.stderr + install.stdout);
  assert.doesNotMatch(install.stdout + install.stderr, /building from source/);

  const ref = greedyReference();
  const run = spawnSync(process.execPath, [join(npmDir, 'npx-cli.js'), 'open-autoglm', 'run', '-n', '64', '--temperature', '0', ref.prompt], {
    cwd: app,
    env,
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, ref.text + '\n');
  const plain = spawnSync(process.execPath, [join(npmDir, 'npx-cli.js'), 'open-autoglm', 'run', 'Once upon a time'], { cwd: app, env, encoding: 'utf8' });
  assert.equal(plain.status, 0, plain.stderr);
  assert.ok(plain.stdout.startsWith('Once upon a time') && plain.stdout.length > 40, plain.stdout);
});
