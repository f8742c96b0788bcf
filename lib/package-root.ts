// Where the installed package lives (for the addon, the default model and package.json), from ESM or the CJS bundle.
import { fileURLToPath } from 'node:url';

// dist/package-root.js (ESM) and dist/index.cjs (CJS bundle) both sit one level below the package root;
// when run from source through tsx this file is lib/package-root.ts, also one level below.
export const packageRoot: string = fileURLToPath(new URL('..', import.meta.url));
