// open-autoglm chat, spawned with piped stdin: two turns then end of input; Ctrl-C (SIGINT) during a reply stops the
// reply and the program answers the next line; Ctrl-C at the prompt ends it; bad usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { loadModel } from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { repoRoot } from '../helpers/fixtures.js';

const TIMEOUT_MS = 60_000;

/** The CLI from the TypeScript sources, with its output collected and waitable. */
class Chat {
  readonly child: ChildProcessWithoutNullStreams;
  out = '';
  err = '';
  readonly exited: Promise<number | null>;
  #waiters: (() => void)[] = [];

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', join('test', 'helpers', 'cli-main.ts'), 'chat', ...args], { cwd: repoRoot });
    this.child.stdout.setEncoding('utf8').on('data', (s: string) => this.#got(() => (this.out += s)));
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => this.#got(() => (this.err += s)));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), TIMEOUT_MS);
    void this.exited.then(() => clearTimeout(timer));
  }

  #got(add: () => void): void {
    add();
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves when `ok()` holds for the output so far; rejects if the process exits first. */
  async until(what: string, ok: () => boolean): Promise<void> {
    let exited = false;
    void this.exited.then(() => {
      exited = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    while (!ok()) {
      if (exited) throw new Error(`exited before ${what}; stdout ${JSON.stringify(this.out)}, stderr ${JSON.stringify(this.err)}`);
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  send(line: string): void {
    this.child.stdin.write(line + '\n');
  }
}

const count = (s: string, sub: string) => s.split(sub).length - 1;

test('two turns over piped stdin, then end of input: the replies are the library greedy replies', async () => {
  const chat = new Chat(['-n', '20', '--temperature', '0', '--system', 'You are a story teller.']);
  chat.send('Hello');
  chat.send('And then?');
  chat.child.stdin.end();
  assert.equal(await chat.exited, 0, chat.err);
  await using model = await loadModel();
  await using session = model.createChatSession({ systemPrompt: 'You are a story teller.' });
  const a = await session.prompt('Hello', { temperature: 0, maxTokens: 20 });
  const b = await session.prompt('And then?', { temperature: 0, maxTokens: 20 });
  assert.equal(chat.out, `> ${a}\n> ${b}\n> \n`);
  assert.match(chat.err, /chat template: llama2/);
});

test('Ctrl-C during a reply stops that reply, and the program still answers the next line', async () => {
  // Greedy replies from stories260K never end by themselves: without -n each would run until the context is full.
  const chat = new Chat(['--temperature', '0', '--ctx', '4096', '--timings']);
  await chat.until('the first prompt', () => chat.out === '> ');
  chat.send('Hello');
  await chat.until('the first reply', () => chat.out.length > 40);
  chat.child.kill('SIGINT');
  await chat.until('the first reply to stop', () => count(chat.err, '[reply stopped]') === 1 && chat.out.endsWith('\n> '));
  const first = chat.out.slice(2, -3);
  chat.send('And then?');
  await chat.until('the second reply', () => chat.out.length > first.length + 50);
  chat.child.kill('SIGINT');
  await chat.until('the second reply to stop', () => count(chat.err, '[reply stopped]') === 2 && chat.out.endsWith('\n> '));
  chat.child.stdin.end();
  assert.equal(await chat.exited, 0, chat.err);
  // Both replies were cut short: each turn's stats line shows far fewer tokens than the context holds.
  const generated = [...chat.err.matchAll(/(\d+) generated/g)].map((m) => Number(m[1]));
  assert.equal(generated.length, 2, chat.err);
  for (const n of generated) assert.ok(n > 0 && n < 3000, `${n} tokens generated`);
  assert.equal(count(chat.out, '> '), 3);
});

test('Ctrl-C at the prompt ends the program', async () => {
  const chat = new Chat([]);
  await chat.until('the prompt', () => chat.out === '> ');
  chat.child.kill('SIGINT');
  assert.equal(await chat.exited, 0, chat.err);
});

test('chat: bad usage exits 2, a missing template file is FILE_NOT_FOUND', async () => {
  const run = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  };
  assert.equal((await run(['chat', 'positional'])).code, 2);
  assert.equal((await run(['chat', '--bogus'])).code, 2);
  const r = await run(['chat', '--template', '/no/such/template.jinja']);
  assert.equal(r.code, 1);
  assert.match(r.err, /FILE_NOT_FOUND/);
  const n = await run(['chat', '-n', 'lots']);
  assert.equal(n.code, 1);
  assert.match(n.err, /INVALID_ARGUMENT/);
});
