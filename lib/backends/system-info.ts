// systemInfo(): the CPU features found, every backend the registry knows (the built-in CPU backend and any backend
// modules, with why each can or cannot be used), the CPU kernel variants, which would be used and why, and the kernel
// plugins registered.
import { fromNative, nativeBinding, type NativeBackendRecord } from '../native.js';
import { kernelPluginInfo, type KernelPluginInfo } from './kernel-plugins.js';

export interface BackendInfo {
  name: string;
  /** The module file; '' for the backend built into the addon. */
  path: string;
  /** 'ready' (usable), 'unusable' (loaded but cannot run here) or 'failed' (did not load, or refused the HAL version). */
  state: NativeBackendRecord['state'];
  available: boolean;
  score: number;
  reason: string;
  devices: NativeBackendRecord['devices'];
}

export interface SystemInfo {
  platform: string;
  arch: string;
  node: string;
  cpu: { vendor: string; brand: string; features: string[] };
  backends: BackendInfo[];
  /** Where backend modules are looked for: the addon's directory, then OPEN_AUTOGLM_BACKEND_PATH's entries. */
  backendSearchPath: string[];
  /** note: how a variant that runs here runs without all it could use ('' if fully), e.g. amx without AMX tiles. */
  cpuVariants: { name: string; score: number; available: boolean; note: string }[];
  /** What a model loaded now would run on. */
  chosen: { backend: string; cpuVariant: string | null; reason: string };
  /** Kernel plugins registered in this process (registerKernelPlugin), with how often each kernel was chosen and run. */
  kernelPlugins: KernelPluginInfo[];
  /**
   * What went wrong with backends this process tried and fell back from, one line each (also emitted once as a
   * process warning, code OPEN_AUTOGLM_BACKEND_FALLBACK): a backend module that failed to load, a GPU backend whose
   * program could not be created (the model then ran on the CPU).
   */
  backendWarnings: string[];
}

interface CpuReport {
  cpu: { vendor: string; brand: string; features: string };
  variants: { name: string; score: number; note: string }[];
  choice: { variant: string | null; reason: string; code?: string };
}

const backendWarnings: string[] = [];

/** Records a backend problem for systemInfo() and emits it once as a process warning. */
export function warnBackend(line: string): void {
  if (backendWarnings.includes(line)) return;
  backendWarnings.push(line);
  process.emitWarning(line, { code: 'OPEN_AUTOGLM_BACKEND_FALLBACK' });
}

export function systemInfo(): SystemInfo {
  const site = new Error();
  const forced = process.env.OPEN_AUTOGLM_CPU || undefined;
  let info;
  try {
    info = nativeBinding().systemInfo(forced);
  } catch (e) {
    throw fromNative(e, site);
  }
  const cpuRecord = info.backends.find((b) => b.name === 'cpu' && b.path === '');
  const cpu: CpuReport = JSON.parse(cpuRecord?.report ?? '{"cpu":{"vendor":"","brand":"","features":""},"variants":[],"choice":{"variant":null,"reason":"no CPU backend"}}');
  const best = info.backends.find((b) => b.state === 'ready');
  const reason = cpu.choice.reason + (forced && cpu.choice.variant ? ' (OPEN_AUTOGLM_CPU)' : '');
  return {
    platform: process.platform,
    arch: process.arch,
    node: process.version,
    cpu: { vendor: cpu.cpu.vendor, brand: cpu.cpu.brand.trim(), features: cpu.cpu.features.split(' ').filter(Boolean) },
    backends: info.backends.map((b) => ({
      name: b.name,
      path: b.path,
      state: b.state,
      available: b.state === 'ready',
      score: b.score,
      reason: b.reason,
      devices: b.devices,
    })),
    backendSearchPath: info.searchPath,
    cpuVariants: cpu.variants.map((v) => ({ ...v, available: v.score > 0 })),
    chosen: {
      backend: best?.name ?? 'none',
      cpuVariant: best?.name === 'cpu' && best.path === '' ? cpu.choice.variant : null,
      reason: best?.name === 'cpu' && best.path === '' ? reason : (best?.reason ?? 'no usable backend'),
    },
    kernelPlugins: (info.kernelPlugins ?? []).map(kernelPluginInfo),
    backendWarnings: [...backendWarnings],
  };
}
