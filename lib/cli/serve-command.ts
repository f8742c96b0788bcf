// `open-autoglm serve`: the OpenAI-compatible HTTP server (and gRPC with --grpc-port) on one model. Listens at once
// (/health answers 503 until the model has loaded), binds to loopback unless told otherwise, and shuts down gracefully
// on SIGTERM or SIGINT: stops accepting, lets in-flight requests finish within --shutdown-timeout, then cancels them.
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { AglmError } from '../errors.js';
import { backendOptions, BACKEND_FLAGS } from './sampling-flags.js';
import { loadModel, type CpuVariant } from '../model/model.js';
import type { GrpcServer } from '../server/grpc.js';
import { createServer } from '../server/http.js';
import type { BenchIo } from './bench-command.js';

export const SERVE_USAGE = `  open-autoglm serve [--model FILE] [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx-size N] [--api-key KEY]
                     [--grpc-port N] [--batch-size N] [--threads N] [--max-queue N] [--model-name NAME]
                     [--shutdown-timeout S] [--cpu VARIANT] [--backend NAME] [--gpu-layers N] [--projector MMPROJ] [--max-images N]
                     [--prompt-cache N]
      An OpenAI-compatible server: POST /v1/chat/completions, /v1/completions (streaming with SSE or not),
      /v1/embeddings, /tokenize, /detokenize; GET /v1/models, /health, /metrics (Prometheus). --parallel sequences
      generate at once over one KV pool of --ctx-size cells; --api-key requires Authorization: Bearer KEY.
      --projector loads a vision projector (mmproj GGUF, GLM-4.1V): chat messages may then hold image_url parts
      with base64 data: URIs (remote URLs are refused), at most --max-images per request (default 8).
      --prompt-cache keeps N finished requests' KV cells for requests that start with the same tokens (default:
      --parallel; 0: off).
`;

function int(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new AglmError('INVALID_ARGUMENT', `Expected an integer from ${min} to ${max} for --${name} but received "${v}"`);
  return n;
}

export async function serveCommand(args: string[], io: BenchIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: false,
    options: {
      model: { type: 'string', short: 'm' },
      host: { type: 'string' },
      port: { type: 'string', short: 'p' },
      parallel: { type: 'string', short: 'n' },
      'ctx-size': { type: 'string', short: 'c' },
      'api-key': { type: 'string' },
      'grpc-port': { type: 'string' },
      'batch-size': { type: 'string', short: 'b' },
      threads: { type: 'string', short: 't' },
      'max-queue': { type: 'string' },
      'model-name': { type: 'string' },
      'shutdown-timeout': { type: 'string' },
      ...BACKEND_FLAGS,
      projector: { type: 'string' },
      'max-images': { type: 'string' },
      'prompt-cache': { type: 'string' },
    },
  });
  void positionals;
  const host = values.host ?? '127.0.0.1';
  const port = int('port', values.port, 0, 65535) ?? 8080;
  const grpcPort = int('grpc-port', values['grpc-port'], 0, 65535);
  const shutdownMs = (int('shutdown-timeout', values['shutdown-timeout'], 0, 3600) ?? 10) * 1000;
  const modelPromise = loadModel(values.model, { ...backendOptions(values), ...(values.projector !== undefined ? { projector: values.projector } : {}) });
  const handler = createServer(modelPromise, {
    parallel: int('parallel', values.parallel, 1, 1024),
    contextSize: int('ctx-size', values['ctx-size'], 1, 1 << 24),
    batchSize: int('batch-size', values['batch-size'], 1, 1 << 16),
    threads: int('threads', values.threads, 1, 1024),
    maxQueue: int('max-queue', values['max-queue'], 0, 1 << 20),
    modelName: values['model-name'],
    apiKey: values['api-key'],
    maxImages: int('max-images', values['max-images'], 0, 1024),
    promptCache: int('prompt-cache', values['prompt-cache'], 0, 1024),
  });
  const server = createHttpServer({ keepAliveTimeout: 65_000 }, handler);
  let grpc: GrpcServer | undefined;
  let stopping: Promise<number> | undefined;
  const stop = (signal: string): Promise<number> => {
    stopping ??= (async () => {
      io.err(`open-autoglm: ${signal}: shutting down (in-flight requests have ${shutdownMs / 1000} s)\n`);
      server.close();
      await Promise.all([handler.close({ deadlineMs: shutdownMs }), grpc?.close({ deadlineMs: shutdownMs })]);
      server.closeAllConnections();
      const model = await modelPromise.catch(() => undefined);
      model?.dispose();
      return 0;
    })();
    return stopping;
  };
  // The signal handlers go in before anything is printed: a supervisor may signal as soon as it sees the first line.
  const done = new Promise<number>((resolve) => {
    const on = (sig: NodeJS.Signals) => () => void stop(sig).then(resolve);
    process.once('SIGTERM', on('SIGTERM'));
    process.once('SIGINT', on('SIGINT'));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  io.err(`open-autoglm: listening on http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port} (loading the model)\n`);
  try {
    const engine = await handler.ready;
    const model = engine.model;
    io.err(`open-autoglm: serving ${engine.name} (${model.architecture}, ${model.backend.description}), ${engine.parallel} sequences over ${engine.contextSize} KV cells\n`);
    if (grpcPort !== undefined && !stopping) {
      const { startGrpcServer } = await import('../server/grpc.js');
      const started = await startGrpcServer(engine, { host, port: grpcPort, apiKey: values['api-key'] });
      // A signal that came while it started: the shutdown under way did not see it, so close it here.
      if (stopping) await started.close({ deadlineMs: 0 });
      else {
        grpc = started;
        io.err(`open-autoglm: gRPC on ${host}:${grpc.port}\n`);
      }
    }
  } catch (e) {
    if (stopping) return stopping;
    server.close();
    server.closeAllConnections();
    throw e;
  }
  return done;
}
