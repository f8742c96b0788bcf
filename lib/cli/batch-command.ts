// `open-autoglm batch`: an OpenAI Batch API input file run locally (runBatch), results appended to --output as they
// complete. Resumable: a rerun with the same --output cuts off a torn last line and skips the custom_ids already there.
// Progress on stderr (a bar on a terminal, plain lines otherwise) and a summary; SIGINT/SIGTERM stop at once (exit 130).
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AglmError } from '../errors.js';
import { backendOptions, BACKEND_FLAGS } from './sampling-flags.js';
import { loadModel, type CpuVariant } from '../model/model.js';
import { countPendingLines, prepareOutput, readLines, ResultWriter } from '../batch/files.js';
import { BatchProgressReporter, PROGRESS_MODES, type ProgressMode } from '../batch/progress.js';
import { runBatch, type BatchProgress } from '../batch/run-batch.js';

export const BATCH_USAGE = `  open-autoglm batch [--model FILE] --input FILE|- --output FILE [--parallel N] [--ctx-size N] [--batch-size N]
                     [--threads N] [--model-name NAME] [--progress bar|lines|none] [--cpu VARIANT] [--backend NAME] [--gpu-layers N]
      Runs an OpenAI Batch API input file (JSONL lines {custom_id, method: POST, url: /v1/chat/completions,
      /v1/completions or /v1/embeddings, body}) with --parallel requests at once (default 4) and appends one result
      line per request to --output as each completes. A rerun with the same --output skips the custom_ids it holds.
`;

export interface BatchIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Read for --input -. Default: process.stdin. */
  input?: NodeJS.ReadableStream;
  /** Whether err goes to a terminal (the default progress is a bar then). Default: process.stderr.isTTY. */
  stderrIsTTY?: boolean;
}

function int(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new AglmError('INVALID_ARGUMENT', `Expected an integer from ${min} to ${max} for --${name} but received "${v}"`);
  return n;
}

const ZERO: BatchProgress = { done: 0, failed: 0, skipped: 0, inFlight: 0, promptTokens: 0, completionTokens: 0, elapsedMs: 0 };

export async function batchCommand(args: string[], io: BatchIo): Promise<number> {
  const { values } = parseArgs({
    args,
    allowPositionals: false,
    options: {
      model: { type: 'string', short: 'm' },
      input: { type: 'string', short: 'i' },
      output: { type: 'string', short: 'o' },
      parallel: { type: 'string', short: 'n' },
      'ctx-size': { type: 'string', short: 'c' },
      'batch-size': { type: 'string', short: 'b' },
      threads: { type: 'string', short: 't' },
      'model-name': { type: 'string' },
      progress: { type: 'string' },
      ...BACKEND_FLAGS,
    },
  });
  if (values.input === undefined || values.output === undefined) {
    io.err(`open-autoglm batch: --input and --output are required\n${BATCH_USAGE}`);
    return 2;
  }
  const input = values.input;
  const output = values.output;
  const options = {
    parallel: int('parallel', values.parallel, 1, 1024),
    contextSize: int('ctx-size', values['ctx-size'], 1, 1 << 24),
    batchSize: int('batch-size', values['batch-size'], 1, 1 << 16),
    threads: int('threads', values.threads, 1, 1024),
    modelName: values['model-name'],
  };
  const progress = values.progress ?? ((io.stderrIsTTY ?? process.stderr.isTTY) ? 'bar' : 'lines');
  if (!(PROGRESS_MODES as readonly string[]).includes(progress)) {
    throw new AglmError('INVALID_ARGUMENT', `Expected one of ${PROGRESS_MODES.join(', ')} for --progress but received "${progress}"`);
  }
  if (input !== '-') {
    if (resolve(input) === resolve(output)) throw new AglmError('INVALID_ARGUMENT', '--input and --output are the same file');
    try {
      await stat(input);
    } catch (e) {
      throw new AglmError('FILE_NOT_FOUND', `Cannot read the input ${input}: ${(e as Error).message}`, { cause: e });
    }
  }

  // What a previous run left: cut a torn last line, skip what is done. Checked before the model loads.
  const state = await prepareOutput(output);
  if (state.repairedBytes > 0) io.err(`open-autoglm batch: cut off a torn last line (${state.repairedBytes} bytes) of ${output}\n`);
  if (state.results > 0) io.err(`open-autoglm batch: resuming: ${state.results} results already in ${output}\n`);
  const total = input === '-' ? undefined : await countPendingLines(input, state.skip, state.skipLines);

  const model = await loadModel(values.model, backendOptions(values));
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => () => controller.abort(new AglmError('ABORTED', `${sig}: the batch was stopped`));
  const onInt = onSignal('SIGINT');
  const onTerm = onSignal('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  let writer: ResultWriter | undefined;
  const reporter = new BatchProgressReporter({ mode: progress as ProgressMode, write: io.err, total });
  let last = ZERO;
  const t0 = performance.now();
  const stdin = input === '-' ? (io.input ?? process.stdin) : undefined;
  try {
    writer = await ResultWriter.open(output);
    const lines = readLines(stdin ?? input);
    const run = runBatch(model, lines, {
      ...options,
      signal: controller.signal,
      skip: state.skip,
      skipLines: state.skipLines,
      onProgress: (p) => {
        last = p;
        reporter.update(p);
      },
    });
    for (;;) {
      const r = await run.next();
      if (r.done) {
        reporter.finish(r.value);
        return 0;
      }
      await writer.write(r.value);
    }
  } catch (e) {
    if (controller.signal.aborted && e instanceof AglmError && e.code === 'ABORTED') {
      reporter.finish({ ...last, inFlight: 0, elapsedMs: performance.now() - t0 }, true);
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    await writer?.close();
    model.dispose();
    // Stopped before the end of stdin: stop reading it, or the process waits for its writer.
    const s = stdin as (NodeJS.ReadableStream & { readableEnded?: boolean; destroy?: () => void }) | undefined;
    if (s && !s.readableEnded) s.destroy?.();
  }
}
