// Behaviour specific to each family beyond the conformance vectors: BERT's [CLS]/[SEP] and normalization, byte-level
// BPE's special and added tokens, Phi-3's special tokens, token bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURE_DIR, loadTokenizer, PLAIN } from './load.js';

const path = (name: string) => join(FIXTURE_DIR, `ggml-vocab-${name}.gguf`);
const ids = (a: Uint32Array) => Array.from(a);

test('bert-bge: [CLS] and [SEP] by default, lowercasing, accents, punctuation and CJK splitting, [UNK]', async () => {
  const t = await loadTokenizer(path('bert-bge'));
  assert.equal(t.family, 'wordpiece');
  assert.equal(t.bos, 101);
  assert.equal(t.sep, 102);
  assert.equal(t.unk, 100);
  assert.equal(t.addBos, true);
  assert.equal(t.addSep, true);
  const plain = ids(t.encode('Hello, World!', PLAIN));
  assert.deepEqual(ids(t.encode('Hello, World!')), [101, ...plain, 102]);
  assert.equal(t.decode(t.encode('Hello, World!')), 'hello , world !');
  assert.equal(t.decode(t.encode('Hello, World!'), { special: true }), '[CLS] hello , world ! [SEP]');
  // Accents go with lowercasing (strip_accents follows lowercase); 'Äpfel' is the word 'apfel'.
  assert.equal(t.decode(t.encode('Äpfel CAFÉ', PLAIN)), 'apfel cafe');
  // Each CJK ideograph is a word; continuation pieces join without a space.
  assert.equal(t.decode(t.encode('中文apple日本', PLAIN)), '中 文 apple 日 本');
  // An unknown word renders as nothing (its [UNK] is a special token) or as [UNK] with special.
  assert.equal(t.decode(t.encode('我想apple', PLAIN)), '我 apple');
  assert.equal(t.decode(t.encode('我想apple', PLAIN), { special: true }), '我 [UNK] apple');
  assert.equal(t.decode(t.encode('tokenization', PLAIN)), 'tokenization');
  assert.ok(t.encode('tokenization', PLAIN).length > 1, 'split into pieces');
  // A word with a character no piece covers is [UNK] as a whole; so is a word over 100 characters.
  assert.deepEqual(ids(t.encode('🦙', PLAIN)), [100]);
  assert.deepEqual(ids(t.encode('a'.repeat(101), PLAIN)), [100]);
  assert.equal(t.decode([101, 100, 102], { special: true }), '[CLS] [UNK] [SEP]');
  // Control and zero-width format characters are dropped; whitespace of any kind separates words.
  assert.deepEqual(ids(t.encode('a\u200db\u0000c', PLAIN)), ids(t.encode('abc', PLAIN)));
  assert.deepEqual(ids(t.encode('a\u3000b\u00a0c', PLAIN)), ids(t.encode('a b c', PLAIN)));
});

test('byte-level BPE: control tokens only with special, user-defined (added) tokens always, decoded as text', async () => {
  const qwen = await loadTokenizer(path('qwen2'));
  assert.equal(qwen.family, 'bpe');
  const imStart = qwen.vocab.idOf('<|im_start|>')!;
  assert.equal(qwen.isControl(imStart), true);
  assert.ok(!ids(qwen.encode('<|im_start|>user', PLAIN)).includes(imStart));
  assert.deepEqual(ids(qwen.encode('<|im_start|>user', { special: true })).slice(0, 1), [imStart]);
  assert.equal(qwen.decode(qwen.encode('<|im_start|>user\nhi<|im_end|>', { special: true })), 'user\nhi');
  assert.equal(qwen.decode(qwen.encode('<|im_start|>user\nhi<|im_end|>', { special: true }), { special: true }), '<|im_start|>user\nhi<|im_end|>');
  assert.equal(qwen.isEog(qwen.vocab.idOf('<|im_end|>')!), true);
  // DeepSeek's vocabulary has single characters as added (user-defined) tokens; they are always split out.
  const ds = await loadTokenizer(path('deepseek-llm'));
  const oSlash = ds.vocab.idOf('ø')!;
  assert.equal(ds.vocab.type(oSlash), 4);
  assert.deepEqual(ids(ds.encode('søren', PLAIN)).filter((id) => id === oSlash), [oSlash]);
  assert.equal(ds.decode(ds.encode('søren', PLAIN)), 'søren');
  // Llama 3: BOS by default (the pre-tokenizer says so; the file has no key).
  const l3 = await loadTokenizer(path('llama-bpe'));
  assert.equal(l3.addBos, true);
  assert.equal(ids(l3.encode('hi'))[0], 128000);
  assert.equal(l3.decode(l3.encode('hi')), 'hi');
});

test('token bytes: byte-level pieces are their bytes, SentencePiece pieces their text, WordPiece pieces get the word space', async () => {
  const gpt2 = await loadTokenizer(path('gpt-2'));
  const hello = gpt2.vocab.idOf('Ġhello')!;
  assert.deepEqual(Array.from(gpt2.tokenBytes(hello)), [...Buffer.from(' hello')]);
  // 'Ċ' is the byte-level character of '\n'; 'Ã' + '©' are the two bytes of 'é'.
  assert.deepEqual(Array.from(gpt2.tokenBytes(gpt2.vocab.idOf('Ċ')!)), [0x0a]);
  assert.deepEqual(Array.from(gpt2.tokenBytes(gpt2.vocab.idOf('Ã©')!)), [0xc3, 0xa9]);
  assert.deepEqual(Array.from(gpt2.tokenBytes(50256)), [...Buffer.from('<|endoftext|>')]);
  const bert = await loadTokenizer(path('bert-bge'));
  assert.deepEqual(Array.from(bert.tokenBytes(bert.vocab.idOf('\u2581the')!)), [...Buffer.from(' the')]);
  assert.deepEqual(Array.from(bert.tokenBytes(bert.vocab.idOf('s')!)), [...Buffer.from('s')]);
});

test('phi-3: SentencePiece like llama-spm; its special tokens drop the whitespace after them', async () => {
  const phi = await loadTokenizer(path('phi-3'));
  const spm = await loadTokenizer(path('llama-spm'));
  assert.equal(phi.family, 'spm');
  const text = 'Hello world, this is phi-3';
  assert.deepEqual(ids(phi.encode(text, PLAIN)), ids(spm.encode(text, PLAIN)));
  const user = phi.vocab.idOf('<|user|>')!;
  const end = phi.vocab.idOf('<|end|>')!;
  // rstrip: the newline after <|user|> and <|end|> is dropped (tokenizers does the same for Phi-3).
  assert.deepEqual(
    ids(phi.encode('<|user|>\nHi<|end|>\n', { addBos: false, special: true })),
    [user, ...ids(phi.encode('Hi', PLAIN)), end],
  );
  assert.equal(phi.isEog(end), true);
  assert.equal(phi.eos, 32000);
  // '</s>' is user-defined in Phi-3's file, but llama.cpp makes it a control token (an end-of-generation text): plain
  // text without special, the token (dropping the whitespace after it) with special.
  assert.equal(phi.isControl(2), true);
  assert.equal(phi.isEog(2), true);
  assert.deepEqual(ids(phi.encode('a</s>', PLAIN)), ids(spm.encode('a</s>', PLAIN)));
  assert.ok(!ids(phi.encode('a</s> b', PLAIN)).includes(2));
  assert.deepEqual(ids(phi.encode('a</s> b', { ...PLAIN, special: true })), [...ids(phi.encode('a', PLAIN)), 2, ...ids(phi.encode('b', PLAIN))]);
});

test('decode hides control tokens unless special, and a continuation keeps its first space', async () => {
  for (const name of ['gpt-2', 'llama-bpe', 'qwen2', 'deepseek-llm', 'bert-bge', 'llama-spm']) {
    const t = await loadTokenizer(path(name));
    const body = t.encode(' and so on', PLAIN);
    const decoded = t.decode(body, { atStart: false });
    assert.ok(decoded.startsWith(' '), `${name}: ${JSON.stringify(decoded)}`);
    const d = t.createStreamDecoder({ atStart: false });
    assert.equal(Array.from(body, (id) => d.push(id)).join('') + d.flush(), decoded, name);
  }
});
