// Writes this platform's addon into prebuilds/<platform>-<arch>/ with prebuildify's file naming, so node-gyp-build
// finds it in an installed package. (prebuildify cannot drive cmake-js, so this script builds and copies it.)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const built = new URL('../build/Release/open_autoglm.node', import.meta.url);

if (!existsSync(built) || process.argv.includes('--rebuild')) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDAGLM_BUILD_TESTS=OFF'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const dir = new URL(`../prebuilds/${process.platform}-${process.arch}/`, import.meta.url);
mkdirSync(dir, { recursive: true });
// prebuildify names: <package>.<tags>.node; "napi" marks a Node-API build usable by any Node version.
const target = new URL('open-autoglm.napi.node', dir);
copyFileSync(built, target);
console.log(`prebuild written: ${fileURLToPath(target)}`);
