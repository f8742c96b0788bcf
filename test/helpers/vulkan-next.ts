// Debian unstable's lavapipe, loader and shader tools beside the system's (scripts/vulkan-next.sh, in .cache): the
// device on which the tests run the VK_KHR_cooperative_matrix tiles (Mesa 24.2 and later have the extension; the
// system's lavapipe may not). `vulkanNextRun` runs an ELF program (node, backend-ops) on it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './fixtures.js';

export const vulkanNextRun = join(repoRoot, '.cache', 'vulkan-next', 'bin', 'run');

/** Why the newer lavapipe cannot be used here, or undefined where it can. */
function vulkanNextMissing(): string | undefined {
  if (process.platform !== 'linux') return 'scripts/vulkan-next.sh fetches Debian packages: Linux only';
  if (!existsSync(vulkanNextRun)) return `no ${vulkanNextRun}: run \`bash scripts/vulkan-next.sh\` (Debian unstable's lavapipe, with VK_KHR_cooperative_matrix), then rebuild`;
  return undefined;
}

/**
 * Whether a test on the newer lavapipe cannot run: skips it, saying why; or fails it where
 * OPEN_AUTOGLM_REQUIRE_VULKAN_NEXT=1 (.ci/run sets it once scripts/vulkan-next.sh has succeeded), so that CI never
 * skips these quietly. `unavailable`: why the backend could not run there (backend-ops' exit 77), if it could not.
 */
export function vulkanNextSkipped(t: { skip: (why: string) => void }, unavailable?: string): boolean {
  const why = unavailable ?? vulkanNextMissing();
  if (!why) return false;
  if (process.env.OPEN_AUTOGLM_REQUIRE_VULKAN_NEXT === '1') assert.fail(`OPEN_AUTOGLM_REQUIRE_VULKAN_NEXT=1, but the newer lavapipe cannot run: ${why}`);
  t.skip(why);
  return true;
}
