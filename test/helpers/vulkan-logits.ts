// Run as a program (node --import tsx test/helpers/vulkan-logits.ts MODEL TOKENS_JSON BATCH): loads MODEL with
// backend 'vulkan', evaluates the tokens in batches of BATCH with every position's logits, and prints one JSON line
// {description, logits (base64 of the Float32Array)}. The tests run it through scripts/vulkan-next.sh's bin/run, on a
// lavapipe other than the system's, which a process cannot switch to once it has loaded a Vulkan loader.
import { loadModel } from '../../lib/index.js';

const [file, tokensJson, batch] = process.argv.slice(2);
await using model = await loadModel(file, { backend: 'vulkan' });
await using ctx = model.createContext({ contextSize: 64, batchSize: Number(batch) });
const logits = await ctx.evaluate(JSON.parse(tokensJson) as number[], { logits: 'all' });
process.stdout.write(JSON.stringify({ description: model.backend.description, logits: Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength).toString('base64') }) + '\n');
