// Runs the command line from the TypeScript sources, as bin/open-autoglm.js runs it from dist/ (tests spawn it with
// `node --import tsx test/helpers/cli-main.ts ...`).
import { main } from '../../lib/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
