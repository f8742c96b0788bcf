// systemInfo(): the CPU features found, the backends and CPU kernel variants available, and which would be used and why.
import { fromNative, nativeBinding } from '../native.js';

export interface SystemInfo {
  platform: string;
  arch: string;
  node: string;
  cpu: { vendor: string; brand: string; features: string[] };
  backends: { name: string; score: number; available: boolean; reason: string }[];
  /** note: how a variant that runs here runs without all it could use ('' if fully), e.g. amx without AMX tiles. */
  cpuVariants: { name: string; score: number; available: boolean; note: string }[];
  /** What a model loaded now would run on. */
  chosen: { backend: string; cpuVariant: string | null; reason: string };
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
  const best = info.backends.find((b) => b.score > 0);
  const reason = info.cpuChoice.reason + (forced && info.cpuChoice.variant ? ' (OPEN_AUTOGLM_CPU)' : '');
  return {
    platform: process.platform,
    arch: process.arch,
    node: process.version,
    cpu: { vendor: info.cpu.vendor, brand: info.cpu.brand.trim(), features: info.cpu.features.split(' ').filter(Boolean) },
    backends: info.backends.map((b) => ({ ...b, available: b.score > 0 })),
    cpuVariants: info.cpuVariants.map((v) => ({ ...v, available: v.score > 0 })),
    chosen: { backend: best?.name ?? 'none', cpuVariant: info.cpuChoice.variant, reason },
  };
}
