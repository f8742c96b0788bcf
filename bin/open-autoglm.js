#!/usr/bin/env node
// The open-autoglm command line (see lib/cli/main.ts).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`open-autoglm: ${e?.message ?? e}\n`);
    process.exitCode = 1;
  },
);
