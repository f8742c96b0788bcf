// `open-autoglm bench --tokenize` (also `npm run bench -- --tokenize`): tokenization speed of our tokenizer and
// node-llama-cpp's on the same text and vocabulary files in the same run, as a markdown section (or JSON).
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { AglmError } from '../errors.js';
import { systemInfo } from '../backends/system-info.js';
import { DEFAULT_PEER_DIR, ensurePeer, loadPeer, PEER_VERSION } from '../tools/peer-install.js';
import {
  defaultTokenizeBenchModels,
  defaultTokenizeBenchText,
  runTokenizeBench,
  tokenizeBenchTable,
  type PeerTokenizerLlama,
  type TokenizeBenchRow,
} from '../tools/tokenize-bench.js';
import type { BenchIo } from './bench-command.js';

export const TOKENIZE_BENCH_USAGE = `  open-autoglm bench --tokenize [--model FILE ...] [--text FILE] [-r REPS] [--no-peer] [--json]
      Tokenization speed (MB/s) of each vocabulary (default: the repository's test vocabularies, one per family) on
      1 MB of text (default: made from the repository's mixed-script fixture), ours and node-llama-cpp ${PEER_VERSION}'s
      (installed on demand into .bench/peer/ or OPEN_AUTOGLM_PEER_DIR) in the same run, and whether the ids agree.
`;

interface PeerHandle {
  llama: PeerTokenizerLlama & { dispose(): Promise<void> };
}

async function openPeer(io: BenchIo): Promise<{ peer?: PeerHandle; note?: string }> {
  const install = await ensurePeer(DEFAULT_PEER_DIR, { log: io.err });
  if (!install.ok) return { note: `node-llama-cpp ${PEER_VERSION} could not be installed (${install.reason}): ours only.` };
  try {
    return { peer: { llama: await loadPeer<PeerHandle['llama']>(install.dir) } };
  } catch (e) {
    return { note: `node-llama-cpp ${PEER_VERSION} could not be loaded (${e instanceof Error ? e.message : String(e)}): ours only.` };
  }
}

/** Notes under the table: where the engines' ids differ, the first line that differs. */
function mismatchNotes(rows: TokenizeBenchRow[]): string {
  return rows
    .filter((r) => r.mismatch)
    .map((r) => {
      const m = r.mismatch!;
      const ex = m.example ? `; first differing line ${JSON.stringify(m.example.line.slice(0, 80))}: ours [${m.example.ours.join(' ')}], peer [${m.example.peer.join(' ')}]` : '';
      return `- ${r.name}: ids differ from token ${m.firstIndex} (${r.tokens} ours, ${r.peerTokens} peer tokens); ${m.linesDiffering} of ${m.lines} distinct lines tokenize differently on their own${ex}.\n`;
    })
    .join('');
}

export async function tokenizeBenchCommand(args: string[], io: BenchIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tokenize: { type: 'boolean' },
      model: { type: 'string', short: 'm', multiple: true },
      text: { type: 'string' },
      r: { type: 'string', short: 'r' },
      'no-peer': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) {
    io.err(`Usage:\n${TOKENIZE_BENCH_USAGE}`);
    return 2;
  }
  const reps = values.r === undefined ? 5 : Number(values.r);
  if (!Number.isInteger(reps) || reps < 1) throw new AglmError('INVALID_ARGUMENT', `Expected an integer >= 1 for -r but received "${values.r}"`);
  let text: string;
  if (values.text !== undefined) {
    try {
      text = readFileSync(values.text, 'utf8');
    } catch (e) {
      throw new AglmError((e as { code?: string }).code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR', `Cannot read ${values.text}: ${(e as Error).message}`);
    }
  } else text = defaultTokenizeBenchText();
  const models = values.model?.length ? values.model : defaultTokenizeBenchModels();
  const { peer, note } = values['no-peer'] ? { peer: undefined, note: 'Run with --no-peer: ours only.' } : await openPeer(io);
  let rows: TokenizeBenchRow[];
  try {
    rows = await runTokenizeBench({ models, text, repetitions: reps, peer: peer?.llama, onProgress: io.err });
  } finally {
    await peer?.llama.dispose();
  }
  if (values.json) {
    io.out(JSON.stringify({ peer: peer ? `node-llama-cpp ${PEER_VERSION}` : null, note, rows }, null, 2) + '\n');
    return 0;
  }
  const brand = systemInfo().cpu.brand || cpus()[0]?.model || 'unknown CPU';
  const bytes = Buffer.byteLength(text);
  io.out(
    `Tokenization of ${(bytes / 1e6).toFixed(2)} MB of text (${values.text ?? 'made from the mixed-script fixture'}), ` +
      `add_special_tokens off, special-token text as text; MB/s = 10^6 bytes of UTF-8 per second, medians of ${reps} runs ` +
      `per engine alternating, after one warm-up run each; ratio = ours / peer. Machine: ${brand}, ` +
      `${availableParallelism()} cores, Node ${process.version}; peer: ${peer ? `node-llama-cpp ${PEER_VERSION} (\`loadModel({vocabOnly: true})\`, \`model.tokenize(text)\`)` : 'none'}.\n\n` +
      tokenizeBenchTable(rows) +
      (note ? `\n- ${note}\n` : '') +
      (rows.some((r) => r.mismatch) ? '\n' + mismatchNotes(rows) : ''),
  );
  return 0;
}
