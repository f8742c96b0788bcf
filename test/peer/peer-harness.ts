// The peer for the agreement tests: node-llama-cpp 3.22.1 installed on demand into .bench/peer (never a dependency
// of the package), or a clear skip when it cannot be installed or loaded here.
import type { TestContext } from 'node:test';
import { DEFAULT_PEER_DIR, ensurePeer, loadPeer, type PeerLlama } from '../../bench/peer.js';

/** The loaded peer (disposed after the test), or undefined after t.skip() said why it is missing. */
export async function openPeerOrSkip(t: TestContext): Promise<PeerLlama | undefined> {
  const install = await ensurePeer(DEFAULT_PEER_DIR, { timeoutMs: 10 * 60_000 });
  if (!install.ok) {
    t.skip(`node-llama-cpp could not be installed: ${install.reason}`);
    return undefined;
  }
  let llama: PeerLlama;
  try {
    llama = await loadPeer(install.dir);
  } catch (e) {
    t.skip(`node-llama-cpp could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  t.after(() => llama.dispose());
  return llama;
}
