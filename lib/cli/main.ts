// The open-autoglm command line: run (stream a completion), chat (interactive), info (systemInfo), quantize (rewrite a
// model's types), perplexity, embed, serve (the OpenAI-compatible server), batch (OpenAI batch files), bench.
import { parseArgs } from 'node:util';
import { AglmError } from '../errors.js';
import { loadModel, type CpuVariant } from '../model/model.js';
import { systemInfo } from '../backends/system-info.js';
import { quantizeModel, QUANTIZE_TYPES, type QuantizeType } from '../tools/quantize.js';
import { benchCommand, BENCH_USAGE } from './bench-command.js';
import { perplexityCommand } from './perplexity-command.js';
import { embedCommand, EMBED_USAGE } from './embed-command.js';
import { chatCommand, CHAT_USAGE } from './chat-command.js';
import { serveCommand, SERVE_USAGE } from './serve-command.js';
import { batchCommand, BATCH_USAGE } from './batch-command.js';
import { num, samplingOptions, SAMPLING_FLAGS, backendOptions } from './sampling-flags.js';

const USAGE = `Usage:
  open-autoglm run [--model FILE] [-n N] [--temperature T] [--seed S] [--threads N] [--top-k K] [--top-p P] [--min-p P]
                   [--repeat-penalty R] [--cpu ref|avx2|avx512|amx|neon] [--backend NAME] [--gpu-layers N]
                   [--timings] "prompt"
      Streams a completion of the prompt to stdout (default model: the stories260K model shipped in the package).
${CHAT_USAGE}  open-autoglm info [--json]
      Prints the CPU features found, the backends and kernel variants available, and which is chosen and why.
  open-autoglm quantize IN OUT --type ${QUANTIZE_TYPES.join('|')}
      Writes IN's weights as another type. q4_1..q6_k and the mixes q4_k_m, q5_k_m are llama.cpp's file types
      (q4_k, q5_k: its Q4_K_S, Q5_K_S), with its per-tensor rules; the others use one type for every matrix.
  open-autoglm perplexity [--model FILE] --text FILE [--ctx N] [--precision P] [--json]
      The model's perplexity on a text (llama.cpp's method: chunks of N tokens, second halves scored).
${EMBED_USAGE}${SERVE_USAGE}${BATCH_USAGE}${BENCH_USAGE}`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** The user's input for chat. Default: process.stdin. */
  input?: NodeJS.ReadableStream;
}

const defaultIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

async function runCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: SAMPLING_FLAGS,
  });
  if (positionals.length !== 1) {
    io.err(USAGE);
    return 2;
  }
  const prompt = positionals[0];
  const model = await loadModel(values.model, backendOptions(values));
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  try {
    io.out(prompt);
    const sampling = samplingOptions(values);
    const iterator = model.generate(prompt, {
      ...sampling,
      maxTokens: sampling.maxTokens ?? 256,
      threads: num('threads', values.threads),
      signal: controller.signal,
    })[Symbol.asyncIterator]();
    let tokens = 0;
    const t0 = performance.now();
    for (;;) {
      const r = await iterator.next();
      if (r.done) break;
      if (r.value.token >= 0) tokens++;
      io.out(r.value.text);
    }
    io.out('\n');
    if (values.timings) {
      const s = (performance.now() - t0) / 1000;
      io.err(`${tokens} tokens in ${s.toFixed(2)} s (${(tokens / s).toFixed(1)} tokens/s, ${model.backend.description})\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof AglmError && e.code === 'ABORTED') {
      io.out('\n');
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    model.dispose();
  }
}

function infoCommand(args: string[], io: Io): number {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } } });
  const info = systemInfo();
  if (values.json) {
    io.out(JSON.stringify(info, null, 2) + '\n');
    return 0;
  }
  io.out(`open-autoglm on ${info.platform}-${info.arch}, Node ${info.node}\n`);
  io.out(`CPU: ${info.cpu.brand} (${info.cpu.vendor})\n`);
  io.out(`CPU features: ${info.cpu.features.join(' ') || '(none detected)'}\n`);
  io.out('Backends:\n');
  for (const b of info.backends) {
    io.out(`  ${b.name.padEnd(8)} ${b.state.padEnd(8)} (score ${b.score})${b.path ? ` ${b.path}` : ' built in'}: ${b.reason}\n`);
  }
  io.out(`Backend modules are looked for in: ${info.backendSearchPath.join(', ') || '(nowhere)'}\n`);
  io.out('CPU kernel variants:\n');
  for (const v of info.cpuVariants) {
    io.out(`  ${v.name.padEnd(8)} ${v.available ? 'runs here' : 'not on this CPU'} (score ${v.score})${v.note ? `: ${v.note}` : ''}\n`);
  }
  io.out(`Chosen: ${info.chosen.backend}${info.chosen.cpuVariant ? ` / ${info.chosen.cpuVariant}` : ''}: ${info.chosen.reason}\n`);
  return info.chosen.cpuVariant ? 0 : 1;
}

async function quantizeCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { type: { type: 'string' } } });
  if (positionals.length !== 2 || !values.type) {
    io.err(USAGE);
    return 2;
  }
  const type = values.type.toLowerCase();
  if (!(QUANTIZE_TYPES as readonly string[]).includes(type)) {
    throw new AglmError('INVALID_ARGUMENT', `Expected one of ${QUANTIZE_TYPES.join(', ')} for --type but received "${values.type}"`);
  }
  const report = await quantizeModel(positionals[0], positionals[1], type as QuantizeType);
  for (const t of report.tensors) io.out(`${t.name.padEnd(28)} ${t.from.padEnd(5)} -> ${t.to.padEnd(5)}${t.reason ? `  (${t.reason})` : ''}\n`);
  const mib = (n: number) => (n / 1048576).toFixed(2);
  io.out(`${positionals[0]} (${mib(report.inputBytes)} MiB) -> ${positionals[1]} (${mib(report.outputBytes)} MiB), ${type}\n`);
  return 0;
}

/** Runs the CLI with `args` (without node and the script); resolves with the exit code. */
export async function main(args: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest, io);
      case 'chat':
        return await chatCommand(rest, io);
      case 'info':
        return infoCommand(rest, io);
      case 'quantize':
        return await quantizeCommand(rest, io);
      case 'bench':
        return await benchCommand(rest, io);
      case 'perplexity':
        return await perplexityCommand(rest, io);
      case 'embed':
        return await embedCommand(rest, io);
      case 'serve':
        return await serveCommand(rest, io);
      case 'batch':
        return await batchCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        io.err(`Unknown command '${command}'.\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof AglmError) {
      io.err(`open-autoglm: ${e.message} [${e.code}]\n`);
      return 1;
    }
    if (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`open-autoglm: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}
