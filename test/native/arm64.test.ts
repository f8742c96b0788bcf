// Cross-builds for Linux AArch64 and runs under qemu-user (scripts/test-arm64.sh): the kernel tests with and without
// the dotprod extension, the Node addon, and an arm64 Node generating the stories260K reference on the neon kernels.
// Without the cross toolchain or qemu this SKIPS locally, but fails under CI=true (.ci/run installs them).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SKIP = 2; // the script's exit status when a prerequisite is missing

test('linux-arm64 build: kernel tests, addon and Node under qemu (neon)', { timeout: 15 * 60 * 1000 }, (t) => {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    t.skip(`cross build and qemu run are set up for linux-x64 hosts (this is ${process.platform}-${process.arch})`);
    return;
  }
  const r = spawnSync('bash', [join(root, 'scripts', 'test-arm64.sh')], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const tail = `\n${r.error ?? ''}\n${out.slice(-8000)}`;
  if (r.status === SKIP) {
    const why = /^SKIP arm64: (.*)$/m.exec(out)?.[1] ?? 'a prerequisite is missing';
    assert.notEqual(process.env.CI, 'true', `arm64 prerequisites are missing under CI: ${why}${tail}`);
    t.skip(why);
    return;
  }
  assert.equal(r.status, 0, `scripts/test-arm64.sh failed (exit ${r.status}):${tail}`);

  // Both qemu CPU models ran the whole kernel test program, the neon table included, without a failure.
  for (const [cpu, features] of [
    ['max', 'neon dotprod'],
    ['cortex-a53', 'neon'],
  ]) {
    const m = new RegExp(`^arm64 kernels \\(qemu -cpu ${cpu}, features: ([^)]*)\\): (\\d+) passed, (\\d+) failed \\((\\d+) neon checks passed\\)$`, 'm').exec(out);
    assert.ok(m, `no kernel test summary for -cpu ${cpu}:${tail}`);
    assert.equal(m[1], features, `-cpu ${cpu} features`);
    assert.equal(m[3], '0', `kernel checks failed under -cpu ${cpu}:${tail}`);
    assert.ok(Number(m[2]) > 0 && Number(m[4]) > 0, `no checks ran under -cpu ${cpu}`);
  }
  assert.match(out, /^arm64 addon: built build\/arm64-addon\/Release\/open_autoglm\.node/m);
  const greedy = /^arm64 node \(arm64 v[\d.]+, neon.*\): greedy (\d+)\/(\d+) tokens match, text matches$/m.exec(out);
  assert.ok(greedy, `no greedy summary from the arm64 Node on the neon kernels:${tail}`);
  assert.equal(greedy[1], greedy[2]);
  assert.equal(greedy[2], '64');
  const logits = /^arm64 node logits: 69x512 in one batch, max \|diff\| (\S+) \(limit 1e-4\)$/m.exec(out);
  assert.ok(logits, `no logits summary from the arm64 Node:${tail}`);
  assert.ok(Number(logits[1]) < 1e-4, `logits max |diff| ${logits[1]}`);
  assert.match(out, /^arm64: PASS/m);
});
