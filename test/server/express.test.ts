// createServer's handler mounted in an Express app (beside the app's own routes, under a path prefix): the same
// answers as on its own, streaming included, and Express's routes still work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import OpenAI from 'openai';
import { createServer, loadModel } from '../../lib/index.js';

test('the handler mounts in Express under a prefix and answers as it does alone', async () => {
  await using model = await loadModel();
  const handler = createServer(model, { parallel: 2 });
  const app = express();
  app.get('/app/ping', (_req, res) => {
    res.json({ pong: true });
  });
  app.use('/llm', handler); // Express strips the prefix from req.url before the handler sees it
  const server = createHttpServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    await handler.ready;
    const client = new OpenAI({ baseURL: `${base}/llm/v1`, apiKey: 'x', maxRetries: 0 });
    const want = await model.complete('Once upon a time', { maxTokens: 24, temperature: 0 });
    const r = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, temperature: 0 });
    assert.equal(r.choices[0].text, want.text);
    let streamed = '';
    for await (const chunk of await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, temperature: 0, stream: true })) {
      streamed += chunk.choices[0]?.text ?? '';
    }
    assert.equal(streamed, want.text);
    assert.deepEqual(await (await fetch(`${base}/app/ping`)).json(), { pong: true });
    const health = await fetch(`${base}/llm/health`);
    assert.equal(health.status, 200);
    const missing = await fetch(`${base}/llm/v1/nothing`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
  } finally {
    await handler.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
