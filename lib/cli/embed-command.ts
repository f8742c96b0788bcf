// `open-autoglm embed`: one embedding per text (model.embed()), printed as JSON.
import { parseArgs } from 'node:util';
import { loadModel } from '../model/model.js';
import { defaultPooling, EMBED_POOLINGS, type EmbedPooling } from '../model/embed.js';
import type { BenchIo } from './bench-command.js';

export const EMBED_USAGE = `  open-autoglm embed [--model FILE] [--pooling ${EMBED_POOLINGS.join('|')}] [--no-normalize] TEXT...
      Prints {"model", "pooling", "dimensions", "embeddings": [[...], ...]} as JSON: one vector per TEXT (default
      pooling: the file's <arch>.pooling_type, else mean for encoders such as bert and last for decoders).
`;

export async function embedCommand(args: string[], io: BenchIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' },
      pooling: { type: 'string' },
      'no-normalize': { type: 'boolean' },
    },
  });
  if (positionals.length === 0) {
    io.err(`Usage:\n${EMBED_USAGE}`);
    return 2;
  }
  await using model = await loadModel(values.model);
  const embeddings = await model.embed(positionals, {
    pooling: values.pooling as EmbedPooling | undefined,
    normalize: !values['no-normalize'],
  });
  const pooling = values.pooling ?? defaultPooling(model);
  io.out(JSON.stringify({ model: model.path, pooling, dimensions: model.hiddenSize, embeddings: embeddings.map((e) => Array.from(e)) }) + '\n');
  return 0;
}
