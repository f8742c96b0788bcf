// The peer engine, node-llama-cpp 3.22.1 (llama.cpp inside): installed on demand into a scratch folder (.bench/peer/,
// gitignored), never as a dependency of this package, and loaded from there. Used by `open-autoglm bench --tokenize`,
// bench/ and the peer agreement tests (bench/peer.ts re-exports this and drives the peer's inference API).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../package-root.js';

export const PEER_VERSION = '3.22.1';
/** Where the peer is installed: OPEN_AUTOGLM_PEER_DIR, else .bench/peer/ in the repository (the package root). */
export const DEFAULT_PEER_DIR = process.env.OPEN_AUTOGLM_PEER_DIR || join(packageRoot, '.bench', 'peer');

/** The prebuilt-binary package of node-llama-cpp for this platform (CPU builds; no GPU package is needed). */
export function peerBinaryPackage(): string {
  const os = process.platform === 'darwin' ? 'mac' : process.platform === 'win32' ? 'win' : process.platform;
  const arch = process.platform === 'darwin' && process.arch === 'arm64' ? 'arm64-metal' : process.arch;
  return `@node-llama-cpp/${os}-${arch}`;
}

function entryPath(dir: string): string {
  return join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
}

function installedVersion(dir: string): string | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

export type PeerInstall = { ok: true; dir: string; installed: boolean } | { ok: false; dir: string; reason: string };

/**
 * Makes sure node-llama-cpp PEER_VERSION is in `dir` (installing it with npm when missing: no install scripts, no
 * binary download by node-llama-cpp itself, no optional GPU packages). Never throws: says why it failed instead.
 */
export async function ensurePeer(dir = DEFAULT_PEER_DIR, options: { timeoutMs?: number; log?: (s: string) => void } = {}): Promise<PeerInstall> {
  if (installedVersion(dir) === PEER_VERSION && existsSync(entryPath(dir))) return { ok: true, dir, installed: false };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }) + '\n');
  const args = [
    'install', '--ignore-scripts', '--omit=optional', '--no-audit', '--no-fund', '--save-exact',
    `node-llama-cpp@${PEER_VERSION}`, `${peerBinaryPackage()}@${PEER_VERSION}`,
  ];
  options.log?.(`installing node-llama-cpp@${PEER_VERSION} into ${dir} ...\n`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = await new Promise<{ code: number | null; output: string }>((done) => {
    let output = '';
    const child = spawn(npm, args, {
      cwd: dir,
      env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32',
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ code: -1, output: output + String(e) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
  if (result.code !== 0 || installedVersion(dir) !== PEER_VERSION) {
    const lines = result.output.split('\n').map((l) => l.trim()).filter(Boolean);
    const errors = lines.filter((l) => /^npm (error|ERR!)/.test(l)).map((l) => l.replace(/^npm (error|ERR!)\s*/, '')).filter(Boolean);
    const why = (errors.length ? errors.slice(0, 3) : lines.slice(-3)).join('; ');
    return { ok: false, dir, reason: `npm install exited with ${result.code}: ${why}` };
  }
  return { ok: true, dir, installed: true };
}

/**
 * The installed peer's CPU build (`getLlama`: no GPU, never builds from source), typed by the caller: the package is
 * not a dependency, so each user declares the part of its API it calls.
 */
/** The installed peer's module itself (its classes, e.g. LlamaCompletion). */
export async function loadPeerModule<T>(dir = DEFAULT_PEER_DIR): Promise<T> {
  return (await import(pathToFileURL(entryPath(dir)).href)) as T;
}

export async function loadPeer<T>(dir = DEFAULT_PEER_DIR): Promise<T> {
  const mod = (await import(pathToFileURL(entryPath(dir)).href)) as {
    getLlama(o: { gpu: false; build: 'never'; logLevel: 'error'; progressLogs?: boolean }): Promise<T>;
  };
  return mod.getLlama({ gpu: false, build: 'never', logLevel: 'error', progressLogs: false });
}
