// One benchmark run in its own process (so peak RSS is per engine): loads one model file in one engine, measures
// ppN and tgN, and prints one JSON line. Used by bench/run.ts.
//   tsx bench/worker.ts --engine ours|peer --model FILE --threads N [--pp 512] [--tg 128] [--reps 1] [--peer-dir DIR]
//                       [--peer-fa on|off|auto]  (llama.cpp's flash attention; default: node-llama-cpp's default)
//   tsx bench/worker.ts ... --batched 1,2,4,8 [--gen 64] [--ttft 256]   (aggregate decode t/s of S sequences at once,
//                       as bdS, and the first token of a new request while the others decode, as ttft in ms)
//   tsx bench/worker.ts ... --grammar [--tg 128]   (greedy decoding without and with the benchmark's JSON schema
//                       grammar, as tgfree and tggrammar)
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readGguf } from '../lib/gguf/index.js';
import { batchedPrompt, benchTokens, describeModelFile, GRAMMAR_BENCH_SCHEMA, runBatchedBench, runBench, runGrammarBench } from '../lib/tools/bench.js';
import { jsonSchemaToGbnf } from '../lib/grammar/index.js';
import { DEFAULT_PEER_DIR, loadPeer, peerBatchedBench, peerBench, peerGrammarBench } from './peer.js';
import { ForeignLoad } from './load.js';

export interface WorkerResult {
  engine: 'ours' | 'peer';
  model: string;
  threads: number;
  /** test name -> mean tokens/s over this process's repetitions */
  tps: Record<string, number>;
  /** test name -> samples */
  samples: Record<string, number[]>;
  /** test name -> per sample, the cores' worth of CPU other processes used meanwhile */
  foreignLoad: Record<string, number[]>;
  warmupSeconds: number;
  /** VmHWM at the end of the run, bytes */
  peakRssBytes: number;
  backend: string;
  /** GB/s read with `threads` threads, probed by bench/run.ts around this run (mean of before and after) */
  bandwidth?: number;
  error?: string;
}

function peakRss(): number {
  const m = /VmHWM:\s+(\d+)\s*kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      engine: { type: 'string' },
      model: { type: 'string' },
      threads: { type: 'string' },
      pp: { type: 'string', default: '512' },
      tg: { type: 'string', default: '128' },
      reps: { type: 'string', default: '1' },
      'peer-dir': { type: 'string', default: DEFAULT_PEER_DIR },
      'peer-fa': { type: 'string', default: 'default' },
      batched: { type: 'string' },
      grammar: { type: 'boolean' },
      gen: { type: 'string', default: '64' },
      ttft: { type: 'string', default: '256' },
    },
  });
  const engine = values.engine as 'ours' | 'peer';
  const modelPath = values.model!;
  const threads = Number(values.threads);
  const pp = Number(values.pp), tg = Number(values.tg), reps = Number(values.reps);
  if ((engine !== 'ours' && engine !== 'peer') || !modelPath || !(threads >= 1)) throw new Error('usage: worker.ts --engine ours|peer --model FILE --threads N');
  const out: WorkerResult = { engine, model: modelPath, threads, tps: {}, samples: {}, foreignLoad: {}, warmupSeconds: 0, peakRssBytes: 0, backend: '' };
  const load = new ForeignLoad();
  const beforeSample = () => load.start();
  const onSample = (test: string) => (out.foreignLoad[test] ??= []).push(load.stop());
  if (values.grammar) {
    const gbnf = jsonSchemaToGbnf(GRAMMAR_BENCH_SCHEMA);
    const record = (test: string, value: number) => ((out.samples[test] ??= []).push(value), (out.tps[test] = value));
    const sample = { beforeSample, onSample: (t: string, v: number) => (onSample(t), record(t, v)) };
    let r: { tests: { test: string; value: { mean: number } }[]; tokens: Record<string, number> };
    if (engine === 'ours') {
      const ours = await runGrammarBench({ modelPath, gbnf, genTokens: tg, threads, repetitions: reps, ...sample });
      out.backend = ours.backendDescription;
      r = ours;
    } else {
      const gguf = await readGguf(modelPath);
      const info = describeModelFile(modelPath, gguf);
      const bos = gguf.metadata.optNumber('tokenizer.ggml.bos_token_id');
      const llama = await loadPeer(values['peer-dir']);
      r = await peerGrammarBench(llama, { modelPath, prompt: batchedPrompt(0, 8, info.vocabSize, bos), gbnf, genTokens: tg, threads, repetitions: reps, dir: values['peer-dir'], ...sample });
      out.backend = `node-llama-cpp ${JSON.parse(readFileSync(`${values['peer-dir']}/node_modules/node-llama-cpp/package.json`, 'utf8')).version} CPU`;
      await llama.dispose();
    }
    for (const t of r.tests) out.tps[t.test] = t.value.mean;
    for (const [t, n] of Object.entries(r.tokens)) out.tps[`${t}-tokens`] = n;
  } else if (values.batched) {
    const counts = values.batched.split(',').map(Number);
    const gen = Number(values.gen), ttft = Number(values.ttft);
    const record = (test: string, value: number) => ((out.samples[test] ??= []).push(value), (out.tps[test] = value));
    if (engine === 'ours') {
      const r = await runBatchedBench({ modelPath, sequences: counts, genTokens: gen, ttftPromptTokens: ttft, threads, repetitions: reps, beforeSample, onSample: (t, v) => (onSample(t), record(t, v)) });
      out.backend = r.backendDescription;
    } else {
      const gguf = await readGguf(modelPath);
      const info = describeModelFile(modelPath, gguf);
      const bos = gguf.metadata.optNumber('tokenizer.ggml.bos_token_id');
      const llama = await loadPeer(values['peer-dir']);
      await peerBatchedBench(llama, {
        modelPath,
        sequences: counts,
        genTokens: gen,
        prompts: (s) => batchedPrompt(s, 8, info.vocabSize, bos),
        ttftPrompt: ttft > 0 ? batchedPrompt(Math.max(...counts), ttft, info.vocabSize, bos) : undefined,
        threads,
        repetitions: reps,
        beforeSample,
        onSample: (t, v) => (onSample(t), record(t, v)),
      });
      out.backend = `node-llama-cpp ${JSON.parse(readFileSync(`${values['peer-dir']}/node_modules/node-llama-cpp/package.json`, 'utf8')).version} CPU`;
      await llama.dispose();
    }
  } else if (engine === 'ours') {
    const r = await runBench({ modelPath, promptTokens: pp, genTokens: tg, threads, repetitions: reps, beforeSample, onSample });
    for (const t of r.tests) {
      out.tps[t.test] = t.tokensPerSecond.mean;
      out.samples[t.test] = t.tokensPerSecond.samples;
    }
    out.warmupSeconds = r.warmupSeconds;
    out.backend = r.backendDescription;
  } else {
    const gguf = await readGguf(modelPath);
    const info = describeModelFile(modelPath, gguf);
    const bos = gguf.metadata.optNumber('tokenizer.ggml.bos_token_id');
    const prompt = benchTokens(pp, info.vocabSize, bos);
    const contextSize = Math.max(pp + tg, 64);
    const llama = await loadPeer(values['peer-dir']);
    const r = await peerBench(llama, {
      modelPath,
      prompt,
      warmup: benchTokens(Math.min(32, contextSize - 1), info.vocabSize, bos),
      genTokens: tg,
      first: bos ?? prompt[0] ?? 3,
      threads,
      repetitions: reps,
      flashAttention: ({ on: true, off: false, auto: 'auto' } as const)[values['peer-fa'] as 'on' | 'off' | 'auto'],
      beforeSample,
      onSample,
    });
    for (const t of r.tests) {
      out.tps[t.test] = t.tokensPerSecond.mean;
      out.samples[t.test] = t.tokensPerSecond.samples;
    }
    out.warmupSeconds = r.warmupSeconds;
    out.backend = `node-llama-cpp ${JSON.parse(readFileSync(`${values['peer-dir']}/node_modules/node-llama-cpp/package.json`, 'utf8')).version} CPU`;
    await llama.dispose();
  }
  out.peakRssBytes = peakRss();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stdout.write(JSON.stringify({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }) + '\n');
    process.exit(1);
  },
);
