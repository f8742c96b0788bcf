// The native layers go one way: napi -> core -> hal -> backends -> kernels -> base, with the C headers of
// include/open-autoglm (the HAL ABI) below them all. A file may include its own layer or one further down, never one
// above; napi, core and hal never include backends/ (backends are reached through the HAL table only). The HAL headers
// are plain C: they compile as C99 with every warning an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot, tempDir } from '../helpers/fixtures.js';

const LAYERS = ['napi', 'core', 'hal', 'backends', 'kernels', 'base', 'include'] as const;
type Layer = (typeof LAYERS)[number];

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(h|hpp|c|cpp)$/.test(name)) out.push(p);
  }
  return out;
}

/** The layer of a repo-relative path, or undefined (tests, tools). */
function layerOf(path: string): Layer | undefined {
  if (path.startsWith('include/')) return 'include';
  const m = /^native\/([^/]+)\//.exec(path);
  return m && (LAYERS as readonly string[]).includes(m[1]) ? (m[1] as Layer) : undefined;
}

/** Where a quoted include resolves: relative to the including file's directory, else to native/ or include/. */
function resolveInclude(from: string, target: string): string | undefined {
  const candidates = [join(from, '..', target), join('native', target), join('include', target)];
  return candidates.map((c) => relative('.', c)).find((c) => {
    try {
      return statSync(join(repoRoot, c)).isFile();
    } catch {
      return false;
    }
  });
}

/** The include rule's violations among `files` (repo-relative paths with their text), and how many includes it checked. */
function violations(files: { path: string; text: string }[]): { wrong: string[]; checked: number } {
  const wrong: string[] = [];
  let checked = 0;
  for (const { path: file, text } of files) {
    const from = layerOf(file);
    if (!from) continue;
    for (const m of text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
      const target = resolveInclude(file, m[1]);
      if (!target) {
        wrong.push(`${file}: cannot resolve #include "${m[1]}"`);
        continue;
      }
      const to = layerOf(target);
      if (!to) continue;
      checked++;
      if (LAYERS.indexOf(to) < LAYERS.indexOf(from)) wrong.push(`${file} (${from}) includes ${target} (${to}): a layer above it`);
      if (to === 'backends' && (from === 'napi' || from === 'core' || from === 'hal'))
        wrong.push(`${file} (${from}) includes ${target}: backends are reached only through the HAL table`);
    }
  }
  return { wrong, checked };
}

test('native includes never go up a layer, and only the HAL reaches backends', () => {
  const files = [...walk(join(repoRoot, 'native')), ...walk(join(repoRoot, 'include'))].map((f) => relative(repoRoot, f));
  const { wrong, checked } = violations(files.map((path) => ({ path, text: readFileSync(join(repoRoot, path), 'utf8') })));
  assert.ok(checked > 100, `only ${checked} includes checked`);
  assert.deepEqual(wrong, []);
});

test('the layer check fails on an include that goes up or around the HAL', () => {
  const { wrong } = violations([
    { path: 'native/kernels/ref/bad.cpp', text: '#include "core/engine.h"\n#include "kernels/kernels.h"\n' },
    { path: 'native/core/bad.cpp', text: '#include "backends/cpu/cpu-state.h"\n' },
    { path: 'native/base/bad.cpp', text: '#include "hal/registry.h"\n' },
    { path: 'native/napi/fine.cpp', text: '#include "core/engine.h"\n#include "open-autoglm/backend.h"\n' },
  ]);
  assert.equal(wrong.length, 3, wrong.join('\n'));
  assert.match(wrong[0], /kernels\/ref\/bad.cpp \(kernels\) includes native\/core\/engine.h \(core\)/);
  assert.match(wrong[1], /only through the HAL table/);
  assert.match(wrong[2], /base\/bad.cpp \(base\) includes native\/hal\/registry.h/);
});

test('the HAL headers are plain C (C99, no C++ types), and compile with every warning an error', (t) => {
  const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
  if (!cc) {
    t.skip('no C compiler on PATH');
    return;
  }
  const dir = tempDir(t, 'aglm-hal-c-');
  const src = join(dir, 'hal.c');
  writeFileSync(
    src,
    '#include "open-autoglm/backend.h"\n#include "open-autoglm/types.h"\n' +
      'int main(void) { aglm_hal_batch b = {0}; aglm_hal_backend t = {0}; (void)b; (void)t; return AGLM_HAL_API_VERSION == 2 ? 0 : 1; }\n',
  );
  const r = spawnSync(cc, ['-std=c99', '-pedantic', '-Wall', '-Wextra', '-Werror', '-I', join(repoRoot, 'include'), '-o', join(dir, 'hal'), src], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  for (const h of ['backend.h', 'types.h']) {
    const text = readFileSync(join(repoRoot, 'include', 'open-autoglm', h), 'utf8');
    assert.doesNotMatch(text, /std::|#include <(atomic|string|vector|memory)>/, h);
  }
});
