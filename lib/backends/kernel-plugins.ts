// Kernel plugins: registerKernelPlugin(path) loads a shared library built against include/open-autoglm/kernel-plugin.h
// and registers its kernels; models loaded afterwards run each matmul a registered kernel accepts on that kernel.
import { resolve } from 'node:path';
import { invalidArgument } from '../errors.js';
import { ggmlTypeName } from '../gguf/index.js';
import { fromNative, nativeBinding, type NativeKernelPlugin } from '../native.js';

export interface KernelPluginKernel {
  name: string;
  /** The op it runs: 'matmul' (the only op of kernel plugin ABI version 1). */
  op: string;
  /** The weight type it multiplies ('Q8_0', ...). */
  weightType: string;
  /** The backend it runs in ('cpu'). */
  backend: string;
  /** The activations it reads ('F32', or 'Q8_0' / 'Q8_1' / 'Q8_K' the engine quantizes for it). */
  activationType: string;
  /** Matmul weights bound to it by the models loaded so far in this process. */
  chosen: number;
  /** Matmul calls it has run (one per op per evaluation). */
  calls: number;
}

export interface KernelPluginInfo {
  /** The library, as a canonical absolute path. */
  path: string;
  name: string;
  version: string;
  kernels: KernelPluginKernel[];
}

export function kernelPluginInfo(p: NativeKernelPlugin): KernelPluginInfo {
  return {
    path: p.path,
    name: p.name,
    version: p.version,
    kernels: p.kernels.map((k) => ({
      name: k.name,
      op: k.op,
      weightType: ggmlTypeName(k.weightType),
      backend: k.backend,
      activationType: ggmlTypeName(k.actType),
      chosen: k.chosen,
      calls: k.calls,
    })),
  };
}

/**
 * Loads the kernel plugin at `path` (a .so / .dll / .dylib exporting `aglm_kernel_plugin_entry`) for the rest of the
 * process and registers its kernels. Models loaded afterwards prefer a registered kernel for each matmul it accepts
 * (model.backend.description names it); models loaded before keep their kernels. Registering the same file again
 * returns its record. Throws FILE_NOT_FOUND, or KERNEL_PLUGIN_INVALID when the file is not a library, lacks the entry
 * symbol, was built for another kernel plugin ABI version or hands back a malformed table.
 */
export function registerKernelPlugin(path: string): KernelPluginInfo {
  if (typeof path !== 'string' || path === '') throw invalidArgument('path', 'the path of a kernel plugin library', path);
  const site = new Error();
  try {
    return kernelPluginInfo(nativeBinding().registerKernelPlugin(resolve(path)));
  } catch (e) {
    throw fromNative(e, site);
  }
}
