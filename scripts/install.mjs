// npm install hook: use a prebuilt addon if one loads on this machine; otherwise compile from source with
// cmake-js (no downloads: headers come from the node-api-headers package). Never reaches the network itself.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const fromSource = process.env.npm_config_build_from_source === 'true' || process.env.OPEN_AUTOGLM_BUILD_FROM_SOURCE === '1';

function loads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false;
  }
}

if (!fromSource && loads()) process.exit(0);

console.log(`open-autoglm: ${fromSource ? 'building from source as asked' : `no prebuilt addon loads on ${process.platform}-${process.arch}; building from source`}`);
let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js');
} catch {
  console.error('open-autoglm: cmake-js is missing, cannot build the native addon from source');
  process.exit(1);
}
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDAGLM_BUILD_TESTS=OFF'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    'open-autoglm: building the native addon failed.\nPossible solutions:\n' +
      '- install CMake (>= 3.18) and a C++17 compiler (g++ or clang++; on Windows, Visual Studio Build Tools)\n' +
      '- or use a platform with a prebuilt addon (linux-x64)',
  );
  process.exit(r.status ?? 1);
}
