// Runs every test file under test/ with Node's test runner (TypeScript through tsx).
// Usage: node scripts/test.mjs [--unit] [path-substring ...]  (no arguments: all tests)
//   --unit: the fast tier (npm run test:unit): everything but the slow files listed in SLOW (the peer comparisons,
//   the arm64 cross build under qemu, the packed-tarball install, the native kernel tests, the 60 s server load test,
//   the batch kill-and-resume run, the 1,000 schema-constrained samples, the comparison with llama.cpp's mtmd, whole
//   models on the Vulkan backend on lavapipe), about two minutes.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const unit = process.argv.includes('--unit');
const filters = process.argv.slice(2).filter((a) => a !== '--unit');
const SLOW = ['test/peer/', 'test/package/', 'test/native/arm64', 'test/native/kernels', 'test/server/load', 'test/batch/cli-batch', 'test/grammar/json-sampling', 'test/vision/mtmd', 'test/model/vulkan', 'test/native/cuda-emu'];

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .filter((f) => !unit || !SLOW.some((s) => f.replaceAll('\\', '/').startsWith(s)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
