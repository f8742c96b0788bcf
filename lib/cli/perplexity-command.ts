// `open-autoglm perplexity --model FILE --text FILE [--ctx N] [--precision P]`: the model's perplexity on a text.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { AglmError } from '../errors.js';
import { loadModel } from '../model/model.js';
import type { PrecisionRequest } from '../backends/planner.js';
import { perplexity } from '../tools/perplexity.js';

export async function perplexityCommand(args: string[], io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', short: 'm' },
      text: { type: 'string', short: 'f' },
      ctx: { type: 'string', short: 'c' },
      threads: { type: 'string', short: 't' },
      precision: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.text) {
    io.err('Usage: open-autoglm perplexity [--model FILE] --text FILE [--ctx N] [--threads N] [--precision auto|f32|f16|bf16|q8_0|q4_0] [--json]\n');
    return 2;
  }
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new AglmError('INVALID_ARGUMENT', `Expected an integer for --${name} but received "${v}"`);
    return Number(v);
  };
  let text: string;
  try {
    text = await readFile(values.text, 'utf8');
  } catch (e) {
    throw new AglmError((e as { code?: string }).code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR', `Cannot read ${values.text}: ${(e as Error).message}`);
  }
  await using model = await loadModel(values.model, { precision: values.precision as PrecisionRequest | undefined });
  const r = await perplexity(model, text, { contextSize: int('ctx', values.ctx), threads: int('threads', values.threads) });
  if (values.json) io.out(JSON.stringify({ model: model.path, precision: model.plan.precision, ...r }) + '\n');
  else io.out(`perplexity ${r.perplexity.toFixed(4)} ± ${r.standardError.toFixed(4)} (${r.scoredTokens} tokens scored in ${r.chunks} chunks of ${r.contextSize}; ${model.plan.precision})\n`);
  return 0;
}
