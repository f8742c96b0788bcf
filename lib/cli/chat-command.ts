// open-autoglm chat: an interactive conversation on the terminal (or piped lines). Replies stream as they are made;
// Ctrl-C stops the reply being written, Ctrl-C at the prompt or end of input (Ctrl-D) ends the program.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { AglmError } from '../errors.js';
import { loadModel, type CpuVariant } from '../model/model.js';
import { parseArgs } from 'node:util';
import { num, samplingOptions, SAMPLING_FLAGS, backendOptions } from './sampling-flags.js';

export const CHAT_USAGE = `  open-autoglm chat [--model FILE] [--system TEXT] [--template FILE] [-n N] [--temperature T] [--seed S] [--top-k K]
                    [--top-p P] [--min-p P] [--repeat-penalty R] [--ctx N] [--threads N] [--cpu VARIANT] [--backend NAME] [--gpu-layers N] [--timings]
      Interactive chat with the model's chat template (or --template, a Jinja file). Ctrl-C stops the current reply;
      Ctrl-C at the prompt or Ctrl-D ends. --timings prints each turn's token counts (reused from the cache, evaluated).
`;

export interface ChatIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Where the user's lines come from. Default: process.stdin. */
  input?: NodeJS.ReadableStream;
}

/** Lines from a readline interface, one at a time; undefined at the end of input or after stop(). */
class LineReader {
  #lines: string[] = [];
  #closed = false;
  #stopped = false;
  #wake: (() => void) | undefined;

  constructor(rl: ReturnType<typeof createInterface>) {
    rl.on('line', (line) => {
      this.#lines.push(line);
      this.#wake?.();
    });
    rl.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
  }

  async next(): Promise<string | undefined> {
    while (this.#lines.length === 0 && !this.#closed && !this.#stopped) await new Promise<void>((r) => (this.#wake = r));
    this.#wake = undefined;
    return this.#stopped ? undefined : this.#lines.shift();
  }

  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }
}

export async function chatCommand(args: string[], io: ChatIo): Promise<number> {
  const { values } = parseArgs({
    args,
    allowPositionals: false,
    options: { ...SAMPLING_FLAGS, system: { type: 'string' }, template: { type: 'string' }, ctx: { type: 'string', short: 'c' } },
  });
  const sampling = samplingOptions(values);
  const template = values.template === undefined ? undefined : readTemplate(values.template);
  const model = await loadModel(values.model, backendOptions(values));
  const input = io.input ?? process.stdin;
  const tty = input === process.stdin && process.stdin.isTTY === true && process.stdout.isTTY === true;
  const rl = createInterface({ input, output: tty ? process.stdout : undefined, terminal: tty });
  const lines = new LineReader(rl);
  let reply: AbortController | undefined;
  // Ctrl-C: stop the reply being written; at the prompt, end. (In a terminal readline reports it; else the signal.)
  const onSigint = () => {
    if (reply) reply.abort(new Error('interrupted'));
    else lines.stop();
  };
  process.on('SIGINT', onSigint);
  rl.on('SIGINT', onSigint);
  try {
    await using session = model.createChatSession({
      systemPrompt: values.system,
      template,
      contextSize: num('ctx', values.ctx),
      threads: num('threads', values.threads),
      overflow: 'dropOldest',
    });
    io.err(`open-autoglm chat: ${model.path} (${model.architecture}), chat template: ${session.template.name}. `);
    io.err('Ctrl-C stops a reply, Ctrl-D exits.\n');
    for (;;) {
      if (tty) rl.prompt();
      else io.out('> ');
      const line = await lines.next();
      if (line === undefined) break;
      if (line.trim() === '') continue;
      reply = new AbortController();
      try {
        for await (const chunk of session.stream(line, { ...sampling, signal: reply.signal, onAbort: 'keep' })) io.out(chunk);
        io.out('\n');
        const stats = session.lastTurnStats;
        if (stats?.stopReason === 'aborted') io.err('[reply stopped]\n');
        if (values.timings && stats) {
          const t = stats.timings;
          io.err(
            `[${stats.promptTokens} prompt tokens: ${stats.reusedTokens} reused, ${stats.evaluatedTokens} evaluated; ` +
              `${stats.generatedTokens} generated${t ? `, ${t.tokensPerSecond.toFixed(1)} tokens/s` : ''}]\n`,
          );
        }
      } catch (e) {
        if (!(e instanceof AglmError) || e.code !== 'CONTEXT_FULL') throw e;
        io.out('\n');
        io.err(`open-autoglm: ${e.message} [${e.code}]\n`);
      } finally {
        reply = undefined;
      }
    }
    if (!tty) io.out('\n');
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    rl.close();
    model.dispose();
  }
}

function readTemplate(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR';
    throw new AglmError(code, `Cannot read the chat template ${path}: ${(e as Error).message}`);
  }
}
