// How many threads a context computes with by default: the cores this process may actually use, which is the
// smaller of its CPU affinity (availableParallelism) and, in a container, its cgroup CPU quota (cpu.max).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

type Read = (path: string) => string;

function cores(quota: number, period: number): number | undefined {
  if (!(quota > 0) || !(period > 0)) return undefined;
  return Math.ceil(quota / period);
}

/**
 * Cores the cgroup CPU quota allows (quota / period, rounded up), or undefined when unlimited or unknown.
 * cgroup v2: `<mount><path>/cpu.max` ("max 100000" or "200000 100000"); v1: `cpu.cfs_quota_us` (-1 = unlimited)
 * and `cpu.cfs_period_us` under the `cpu` controller's path.
 */
export function cgroupCpuLimit(read: Read = (p) => readFileSync(p, 'utf8')): number | undefined {
  if (process.platform !== 'linux') return undefined;
  let lines: string[];
  try {
    lines = read('/proc/self/cgroup').split('\n');
  } catch {
    return undefined;
  }
  const attempt = (f: () => number | undefined) => {
    try {
      return f();
    } catch {
      return undefined;
    }
  };
  const v1 = lines.map((l) => l.split(':')).find((parts) => parts.length >= 3 && parts[1].split(',').includes('cpu'));
  if (v1) {
    const dir = `/sys/fs/cgroup/cpu${v1[2] === '/' ? '' : v1[2]}`;
    const limit = attempt(() => cores(Number(read(`${dir}/cpu.cfs_quota_us`)), Number(read(`${dir}/cpu.cfs_period_us`))));
    if (limit !== undefined) return limit;
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (v2) {
    const rel = v2.slice(3).trim();
    return attempt(() => {
      const [quota, period] = read(`/sys/fs/cgroup${rel === '/' ? '' : rel}/cpu.max`).trim().split(/\s+/);
      return quota === 'max' ? undefined : cores(Number(quota), Number(period));
    });
  }
  return undefined;
}

let cached: number | undefined;

export function defaultThreadCount(): number {
  if (cached === undefined) cached = Math.max(1, Math.min(availableParallelism(), cgroupCpuLimit() ?? Infinity));
  return cached;
}
