// Loads the native addon (build/Release or prebuilds/<platform>-<arch>) and turns its errors into AglmErrors.
import { createRequire } from 'node:module';
import { AglmError, ERROR_CODES, type ErrorCode } from './errors.js';
import { packageRoot } from './package-root.js';
import type { IrGraph } from './graph/ir.js';

export interface NativeBackendRecord {
  name: string;
  /** The module's file; '' for the backend built into the addon. */
  path: string;
  /** ready: usable; unusable: loaded but reports it cannot run here; failed: did not load or refused the HAL version. */
  state: 'ready' | 'unusable' | 'failed';
  reason: string;
  score: number;
  devices: { name: string; description: string; kind: string; memoryTotal: number; memoryFree: number }[];
  /** The backend's own detail, as JSON text (the CPU backend: its features, kernel variants and choice). */
  report?: string;
}

/** A registered kernel plugin (native/hal/kernel-plugins.h) with its kernels' counters at the time of the call. */
export interface NativeKernelPlugin {
  /** The file, as a canonical absolute path. */
  path: string;
  name: string;
  version: string;
  kernels: { name: string; op: string; weightType: number; backend: string; actType: number; chosen: number; calls: number }[];
}

export interface NativeSystemInfo {
  backends: NativeBackendRecord[];
  /** Directories searched for backend modules (the addon's own, then OPEN_AUTOGLM_BACKEND_PATH). */
  searchPath: string[];
  kernelPlugins: NativeKernelPlugin[];
}

export interface NativeModel {
  createContext(options: { nCtx: number; nBatch: number; nThreads: number; nSeqs?: number; kvType?: 0 | 1 }): Promise<NativeContext>;
  describe(): {
    backend: string;
    backendReason: string;
    description: string;
    nVocab: number;
    nHidden: number;
    fileSize: number;
    programBytes: number;
    convertedBytes: number;
    /** Attention layers, and how many run on a non-CPU backend (gpuLayers). */
    layers: number;
    gpuLayers: number;
  };
  dispose(): void;
}

/** One sequence's share of a step (native/napi/context-wrap.cpp). */
export interface NativeStepPart {
  seq: number;
  tokens: Uint32Array;
  offset: number;
  count: number;
  /** 0: no output, 1: the last token's, 2: every token's, 3: every merge-th token's (a model that merges rows). */
  out: 0 | 1 | 2 | 3;
  /** 0: logits (rows of nVocab), 1: hidden states after the final norm (rows of nHidden). */
  kind: 0 | 1;
  buffer: Float32Array | null;
  /** The buffer row the part's first output goes to. */
  row: number;
  /** (optional, indexed like `tokens`) -1, or the row of `embd` the token takes instead of its embedding. */
  embdRows?: Int32Array;
  /** Input rows (of the model's input width) that `embdRows` point at. */
  embd?: Float32Array;
  /** (optional) Four rope positions per token of `tokens` (M-RoPE planes t, h, w, e; vision: row, column). */
  ropePos?: Int32Array;
  /** (optional) Two grid coordinates per token of `tokens` (where a vision encoder samples its position grid). */
  gridPos?: Float32Array;
}

export interface NativeContext {
  createSequence(): number;
  forkSequence(src: number, n: number): number;
  truncateSequence(id: number, n: number): void;
  freeSequence(id: number): void;
  sequenceLength(id: number): number;
  /**
   * Evaluates the parts' tokens in one forward pass. A part that cannot be taken throws synchronously (the error's
   * `part` is its index; nothing was allocated). A failed step rejects and is rolled back.
   */
  step(parts: NativeStepPart[]): Promise<void>;
  abortStep(): void;
  info(): { nCells: number; nBatch: number; cellsUsed: number; sequences: number; maxSequences: number; stepping: boolean; memoryBytes: number };
  dispose(): void;
}

export interface NativeBinding {
  irVersion: number;
  Model: {
    load(spec: { path: string; backend?: string; variant?: string; variantSource?: string; threads?: number; gpuLayers?: number; graph: IrGraph }): Promise<NativeModel>;
  };
  systemInfo(cpuVariant?: string): NativeSystemInfo;
  /** Throws FILE_NOT_FOUND or KERNEL_PLUGIN_INVALID; the same file again returns its first record. */
  registerKernelPlugin(path: string): NativeKernelPlugin;
  alignmentOffset(buffer: ArrayBuffer): number;
  convertRows(srcType: number, src: Uint8Array, dstType: number, rows: number, rowLength: number, dst: Uint8Array): Promise<void>;
  rowBytes(type: number, n: number): number;
  /** DRAM read bandwidth in GB/s (10^9 B/s): the best of `passes` full reads of a `bytes` buffer by `threads` threads. */
  measureReadBandwidth(bytes?: number, threads?: number, passes?: number): Promise<number>;
}

let binding: NativeBinding | undefined;

/** The addon, loaded once; throws NATIVE_LOAD_FAILED with the fixes to try. */
export function nativeBinding(): NativeBinding {
  if (binding) return binding;
  const require = createRequire(import.meta.url);
  try {
    const load = require('node-gyp-build') as (dir: string) => NativeBinding;
    binding = load(packageRoot);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new AglmError(
      'NATIVE_LOAD_FAILED',
      `Could not load the open-autoglm native addon for ${process.platform}-${process.arch} (Node ${process.version}): ${reason}\n` +
        'Possible solutions:\n' +
        '- reinstall without --ignore-scripts so the install step can pick a prebuild or build from source: npm rebuild open-autoglm\n' +
        '- building from source needs CMake (>= 3.18) and a C++17 compiler on PATH\n' +
        '- in Electron, unpack the addon from the asar archive (asarUnpack: ["**/node_modules/open-autoglm/**"])',
      { cause: e },
    );
  }
  return binding;
}

/** Turns an error thrown or rejected by the addon into an AglmError whose stack points at `site`. */
export function fromNative(e: unknown, site?: Error): AglmError {
  if (e instanceof AglmError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  const known = typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code);
  const err = new AglmError(known ? (code as ErrorCode) : 'NATIVE_ERROR', message, { cause: e });
  if (site?.stack) err.stack = `AglmError: ${message}\n${site.stack.split('\n').slice(1).join('\n')}`;
  return err;
}
