// Writes this platform's addon into prebuilds/<platform>-<arch>/ with prebuildify's file naming, so node-gyp-build
// finds it in an installed package, and the backend modules built beside it (aglm-backend-<name>.so/.dll/.dylib) next
// to it, where the registry probes them. On macOS it also carries MoltenVK (Apache-2.0, with its license and a notice)
// when one is found at build time, so the Vulkan module runs on Apple GPUs. (prebuildify cannot drive cmake-js, so
// this script builds and copies it.)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const release = join(root, 'build', 'Release');
const built = join(release, 'open_autoglm.node');
const moduleSuffix = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';

if (!existsSync(built) || process.argv.includes('--rebuild')) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDAGLM_BUILD_TESTS=OFF'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(dir, { recursive: true });
// prebuildify names: <package>.<tags>.node; "napi" marks a Node-API build usable by any Node version.
const target = join(dir, 'open-autoglm.napi.node');
copyFileSync(built, target);
console.log(`prebuild written: ${target}`);

// The backend modules: exactly those of this build (a module left from an earlier prebuild is removed). The test
// modules (build/Release/test-backends/) are never shipped.
const isModule = (f) => f.startsWith('aglm-backend-') && f.endsWith(moduleSuffix);
for (const f of readdirSync(dir).filter(isModule)) rmSync(join(dir, f));
for (const f of readdirSync(release).filter(isModule)) {
  copyFileSync(join(release, f), join(dir, f));
  console.log(`backend module: ${join(dir, f)}`);
}

if (process.platform === 'darwin') copyMoltenVK(dir);

/**
 * macOS: libMoltenVK.dylib beside the Vulkan module (vk-context.cpp opens it there when no Vulkan loader is
 * installed), with MoltenVK's license and a notice. Found through OPEN_AUTOGLM_MOLTENVK (the dylib's path), the Vulkan
 * SDK ($VULKAN_SDK/lib) or Homebrew (brew install molten-vk). Unverified: no macOS machine has run this yet.
 */
function copyMoltenVK(out) {
  for (const f of ['libMoltenVK.dylib', 'libMoltenVK.LICENSE.txt', 'libMoltenVK.NOTICE.txt']) rmSync(join(out, f), { force: true });
  if (!existsSync(join(out, `aglm-backend-vulkan${moduleSuffix}`))) return console.log('MoltenVK: not carried (the Vulkan module is not built)');
  const candidates = [
    process.env.OPEN_AUTOGLM_MOLTENVK,
    process.env.VULKAN_SDK && join(process.env.VULKAN_SDK, 'lib', 'libMoltenVK.dylib'),
    '/opt/homebrew/opt/molten-vk/lib/libMoltenVK.dylib',
    '/usr/local/opt/molten-vk/lib/libMoltenVK.dylib',
    '/opt/homebrew/lib/libMoltenVK.dylib',
    '/usr/local/lib/libMoltenVK.dylib',
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    if (process.env.OPEN_AUTOGLM_MOLTENVK) {
      console.error(`MoltenVK: OPEN_AUTOGLM_MOLTENVK=${process.env.OPEN_AUTOGLM_MOLTENVK} does not exist`);
      process.exit(1);
    }
    return console.log('MoltenVK: not found (set OPEN_AUTOGLM_MOLTENVK, or install the Vulkan SDK or `brew install molten-vk`); the prebuild needs a Vulkan loader on the user\'s machine');
  }
  const dylib = realpathSync(found);
  copyFileSync(dylib, join(out, 'libMoltenVK.dylib'));
  // MoltenVK's own LICENSE where the install has it (Homebrew's keg, the SDK's share/), else the Apache-2.0 text.
  const prefix = dirname(dirname(dylib));
  const licenses = [
    process.env.OPEN_AUTOGLM_MOLTENVK_LICENSE,
    join(prefix, 'LICENSE'),
    join(prefix, 'share', 'doc', 'MoltenVK', 'LICENSE'),
    join(prefix, 'share', 'vulkan', 'licenses', 'MoltenVK', 'LICENSE'),
    join(root, 'native', 'backends', 'vulkan', 'moltenvk', 'LICENSE-Apache-2.0.txt'),
  ].filter(Boolean);
  copyFileSync(licenses.find((p) => existsSync(p)), join(out, 'libMoltenVK.LICENSE.txt'));
  writeFileSync(
    join(out, 'libMoltenVK.NOTICE.txt'),
    'libMoltenVK.dylib is MoltenVK (https://github.com/KhronosGroup/MoltenVK), an implementation of Vulkan on Apple\'s\n' +
      'Metal, Copyright (c) 2015-2025 The Brenwill Workshop Ltd., licensed under the Apache License, Version 2.0\n' +
      '(libMoltenVK.LICENSE.txt). It is redistributed unmodified, as built by its project, so that open-autoglm\'s\n' +
      `Vulkan backend runs on Apple GPUs without a Vulkan loader installed. Copied from: ${dylib}\n`,
  );
  console.log(`MoltenVK: ${dylib} -> ${join(out, 'libMoltenVK.dylib')} (with its license and notice)`);
}
