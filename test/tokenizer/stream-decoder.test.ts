// Streaming decode: whole characters per push (multi-byte characters split across byte tokens), same text as decode().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LLAMA_SPM_PATH, loadTokenizer, STORIES_PATH } from './load.js';

const TEXTS = [
  'Once upon a time, a 🦙 paid 5€ for 中文 tea.',
  '🚀😶‍🌫️✅ naïve café — 日本語テキスト\nnew line  two spaces',
  'Ѐ ক্ষ 👍🏽 🇫🇷 end',
];

/** True when s is well-formed UTF-16 (no lone surrogate halves). */
const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

for (const [name, path] of [['stories260K', STORIES_PATH], ['llama-spm', LLAMA_SPM_PATH]] as const) {
  test(`${name}: each push yields whole characters and the pushes concatenate to decode()`, async () => {
    const t = await loadTokenizer(path);
    for (const text of TEXTS) {
      const tokens = t.encode(text);
      const d = t.createStreamDecoder();
      const chunks: string[] = [];
      let heldBack = 0;
      for (const id of tokens) {
        const chunk = d.push(id);
        assert.ok(wellFormed(chunk), `push(${id}) returned a split surrogate pair`);
        assert.ok(!chunk.includes('\uFFFD'), `push(${id}) returned a replacement character`);
        if (chunk === '' && t.tokenBytes(id).length === 1 && t.tokenBytes(id)[0] >= 0x80) heldBack++;
        chunks.push(chunk);
      }
      chunks.push(d.flush());
      assert.ok(heldBack > 0, 'some multi-byte character was split across byte tokens');
      assert.equal(chunks.join(''), t.decode(tokens));
      assert.equal(chunks.join(''), text);
    }
  });
}

test('flush turns an incomplete character into U+FFFD', async () => {
  const t = await loadTokenizer(STORIES_PATH);
  const d = t.createStreamDecoder();
  // '€' is E2 82 AC; stories260K byte tokens are 3 + byte.
  assert.equal(d.push(3 + 0xe2), '');
  assert.equal(d.push(3 + 0x82), '');
  assert.equal(d.flush(), '\uFFFD');
  assert.equal(d.push(3 + 0x41), 'A');
  assert.equal(t.decode([3 + 0xe2, 3 + 0x82, 3 + 0x41]), '\uFFFDA');
});

test('a stream decoder for a continuation keeps the first space', async () => {
  const t = await loadTokenizer(STORIES_PATH);
  const ids = t.encode('Once upon a time', { addBos: false });
  const cont = t.createStreamDecoder({ atStart: false });
  const start = t.createStreamDecoder();
  assert.equal(Array.from(ids.slice(1), (id) => cont.push(id)).join(''), ' upon a time');
  assert.equal(Array.from(ids, (id) => start.push(id)).join(''), 'Once upon a time');
});
