// The benchmark's model files: random-weight llama GGUFs of real shapes, written once into .bench/models/ by the
// project's own writer (speed does not depend on the weights being trained).
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GgmlType } from '../lib/gguf/index.js';
import { TINYLLAMA_SHAPE, writeRandomLlamaModel, type LlamaShape } from '../lib/tools/random-model.js';

/** A 110M-parameter llama (the shape of Karpathy's stories110M, with a 32000-token vocabulary). */
export const SHAPE_110M: LlamaShape = {
  embeddingLength: 768, blockCount: 12, headCount: 12, headCountKv: 12, feedForwardLength: 2048, vocabSize: 32000, contextLength: 2048, tiedOutput: true,
};

export const BENCH_TYPES = { F32: GgmlType.F32, F16: GgmlType.F16, Q8_0: GgmlType.Q8_0, Q4_0: GgmlType.Q4_0 } as const;
export type BenchTypeName = keyof typeof BENCH_TYPES;

export interface BenchModelSpec {
  /** 'tinyllama' or '110m' */
  family: string;
  shape: LlamaShape;
  type: BenchTypeName;
  file: string;
}

export const FAMILIES: Record<string, LlamaShape> = { tinyllama: TINYLLAMA_SHAPE, '110m': SHAPE_110M };

export function modelSpec(dir: string, family: string, type: BenchTypeName): BenchModelSpec {
  const shape = FAMILIES[family];
  if (!shape) throw new Error(`unknown model family ${family}`);
  return { family, shape, type, file: join(dir, `${family}-${type.toLowerCase()}.gguf`) };
}

/** Writes the file unless it is there already (written to a temporary name first, so a killed run leaves no stub). */
export async function ensureModel(spec: BenchModelSpec, log: (s: string) => void = () => {}): Promise<{ written: boolean; seconds: number }> {
  if (existsSync(spec.file) && statSync(spec.file).size > 0) return { written: false, seconds: 0 };
  mkdirSync(join(spec.file, '..'), { recursive: true });
  const t0 = performance.now();
  log(`writing ${spec.file} (${spec.family} shape, ${spec.type}) ...`);
  const tmp = `${spec.file}.partial`;
  await writeRandomLlamaModel(tmp, spec.shape, { type: BENCH_TYPES[spec.type], seed: 7 });
  // Flush it to disk now: writeback of gigabytes of dirty pages during the measurements would steal CPU from them.
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, spec.file);
  const seconds = (performance.now() - t0) / 1000;
  log(` ${seconds.toFixed(1)} s\n`);
  return { written: true, seconds };
}
