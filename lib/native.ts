// Loads the native addon (build/Release or prebuilds/<platform>-<arch>) and turns its errors into AglmErrors.
import { createRequire } from 'node:module';
import { AglmError, ERROR_CODES, type ErrorCode } from './errors.js';
import { packageRoot } from './package-root.js';
import type { IrGraph } from './graph/ir.js';

export interface NativeSystemInfo {
  cpu: { vendor: string; brand: string; features: string };
  cpuVariants: { name: string; score: number; note: string }[];
  cpuChoice: { variant: string | null; reason: string; code?: string };
  backends: { name: string; score: number; reason: string }[];
}

export interface NativeModel {
  createContext(options: { nCtx: number; nBatch: number; nThreads: number; kvType?: 0 | 1 }): Promise<NativeContext>;
  describe(): { backend: string; backendReason: string; description: string; nVocab: number; nHidden: number; fileSize: number };
  dispose(): void;
}

export interface NativeContext {
  /**
   * mode: 0 last, 1 all, 2 none; kind: 0 logits (rows of nVocab, the default), 1 hidden states after the final norm
   * (rows of nHidden; the output projection is skipped). Resolves with the positions the context holds afterwards.
   */
  evaluate(tokens: Uint32Array, n: number, mode: 0 | 1 | 2, out: Float32Array | null, kind?: 0 | 1): Promise<number>;
  abort(): void;
  setPosition(n: number): void;
  info(): { nPast: number; nCtx: number; nBatch: number; memoryBytes: number };
  dispose(): void;
}

export interface NativeBinding {
  irVersion: number;
  Model: {
    load(spec: { path: string; backend?: string; variant?: string; variantSource?: string; threads?: number; graph: IrGraph }): Promise<NativeModel>;
  };
  systemInfo(cpuVariant?: string): NativeSystemInfo;
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
