// How busy the machine is with other processes: the benchmark machine may be shared (builds, tests), and a run
// that competes for the cores measures the competition. Linux only (/proc/stat); elsewhere nothing is measured.
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on every Linux ABI Node runs on

/** Busy CPU seconds of the whole machine since boot (user, nice, system, irq, softirq, steal), or NaN. */
export function machineBusySeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return (user + nice + system + irq + softirq + (steal ?? 0)) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** CPU seconds used by this process (all its threads). */
export function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Measures, over an interval, the cores' worth of CPU that processes other than this one used. */
export class ForeignLoad {
  #t = 0;
  #busy = 0;
  #own = 0;
  start(): void {
    this.#t = performance.now();
    this.#busy = machineBusySeconds();
    this.#own = processCpuSeconds();
  }
  /** Average cores used by other processes since start() (NaN where /proc/stat is unavailable). */
  stop(): number {
    const wall = (performance.now() - this.#t) / 1000;
    const others = machineBusySeconds() - this.#busy - (processCpuSeconds() - this.#own);
    return wall > 0 ? Math.max(0, others / wall) : NaN;
  }
}

/** Cores' worth of CPU used by all processes over `ms` (sampled from outside any benchmark). */
export async function machineLoad(ms = 500): Promise<number> {
  const t = performance.now();
  const b = machineBusySeconds();
  await new Promise((r) => setTimeout(r, ms));
  return (machineBusySeconds() - b) / ((performance.now() - t) / 1000);
}
