// A server in a process of its own, for tests that measure it apart from their clients (its resident memory): forked
// with an IPC channel (`node --import tsx`), it loads the model, serves createServer on an ephemeral loopback port,
// and samples process.memoryUsage().rss once a second from 'start'. Messages: in, { type: 'start' | 'samples' |
// 'close' }; out, { type: 'listening', port }, { type: 'samples', samples }, { type: 'closed' }.
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadModel } from '../../lib/index.js';
import { createServer, type ServerOptions } from '../../lib/server/http.js';

export interface MemorySample {
  /** Seconds since 'start'. */
  t: number;
  rss: number;
  heapUsed: number;
  external: number;
}

const { model: modelPath, server: serverOptions } = JSON.parse(process.argv[2] ?? '{}') as { model?: string; server?: ServerOptions };
const model = await loadModel(modelPath);
const handler = createServer(model, serverOptions);
const server = createHttpServer({ keepAliveTimeout: 65_000 }, handler);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
await handler.ready;

const samples: MemorySample[] = [];
let timer: NodeJS.Timeout | undefined;
let t0 = 0;
const sample = () => {
  const m = process.memoryUsage();
  samples.push({ t: (performance.now() - t0) / 1000, rss: m.rss, heapUsed: m.heapUsed, external: m.external });
};

process.on('message', async (msg: { type: string }) => {
  if (msg.type === 'start') {
    t0 = performance.now();
    samples.length = 0;
    sample();
    timer = setInterval(sample, 1000);
  } else if (msg.type === 'samples') {
    process.send!({ type: 'samples', samples });
  } else if (msg.type === 'close') {
    clearInterval(timer);
    await handler.close({ deadlineMs: 0 });
    server.closeAllConnections();
    server.close();
    model.dispose();
    process.send!({ type: 'closed' }, () => process.disconnect());
  }
});
process.send!({ type: 'listening', port: (server.address() as AddressInfo).port });
