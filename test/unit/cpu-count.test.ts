// The default thread count honours cgroup CPU quotas (v1 and v2) as well as CPU affinity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupCpuLimit, defaultThreadCount } from '../../lib/backends/cpu-count.js';
import { availableParallelism } from 'node:os';

const fs = (files: Record<string, string>) => (p: string) => {
  if (!(p in files)) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
  return files[p];
};

test('cgroup v2 cpu.max quotas round up to whole cores; "max" is unlimited', { skip: process.platform !== 'linux' && 'cgroups are Linux-only' }, () => {
  assert.equal(cgroupCpuLimit(fs({ '/proc/self/cgroup': '0::/app\n', '/sys/fs/cgroup/app/cpu.max': '150000 100000\n' })), 2);
  assert.equal(cgroupCpuLimit(fs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined);
  assert.equal(cgroupCpuLimit(fs({ '/proc/self/cgroup': '0::/x\n' })), undefined);
});

test('cgroup v1 cfs quota, -1 unlimited', { skip: process.platform !== 'linux' && 'cgroups are Linux-only' }, () => {
  const v1 = '4:memory:/m\n1:cpu,cpuacct:/job\n0::/\n';
  assert.equal(cgroupCpuLimit(fs({ '/proc/self/cgroup': v1, '/sys/fs/cgroup/cpu/job/cpu.cfs_quota_us': '300000', '/sys/fs/cgroup/cpu/job/cpu.cfs_period_us': '100000' })), 3);
  assert.equal(cgroupCpuLimit(fs({ '/proc/self/cgroup': v1, '/sys/fs/cgroup/cpu/job/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/job/cpu.cfs_period_us': '100000' })), undefined);
});

test('the default thread count is within [1, availableParallelism]', () => {
  const n = defaultThreadCount();
  assert.ok(n >= 1 && n <= availableParallelism());
});
