// Compiles lib/ to dist/: ESM with declarations (tsc), plus a CommonJS bundle dist/index.cjs (esbuild) and its
// declaration entry dist/index.d.cts. Runs on `npm install` in a clone (prepare) and before `npm pack`.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  // Installed as a dependency of another package (no devDependencies): dist/ ships in the tarball already.
  if (existsSync(new URL('../dist/index.js', import.meta.url))) process.exit(0);
  console.error('open-autoglm: TypeScript is not installed; run npm install in the repository first');
  process.exit(1);
}

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

const esbuild = require('esbuild');
esbuild.buildSync({
  entryPoints: [fileURLToPath(new URL('../lib/index.ts', import.meta.url))],
  outfile: fileURLToPath(new URL('../dist/index.cjs', import.meta.url)),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  // import.meta.url has no CommonJS equivalent; the bundle sits in dist/ like the ESM files, so its own URL works.
  define: { 'import.meta.url': '__aglm_import_meta_url' },
  banner: { js: "const __aglm_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
writeFileSync(new URL('../dist/index.d.cts', import.meta.url), "export * from './index.js';\n");
