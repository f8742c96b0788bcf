// Special tokens at the edges and inside the text, as llama.cpp's llama_tokenize has them:
// - addSpecial (llama.cpp's add_special): BOS/EOS/SEP as the vocabulary's flags say, or none; addBos/addEos/addSep
//   override it for their one token;
// - special: false (parse_special = false): the text of control tokens stays plain text, with the whitespace around it
//   kept; special: true matches it, with the lstrip/rstrip llama.cpp gives (Phi-3: rstrip);
// - and the same ids as node-llama-cpp 3.22.1 (llama.cpp) for both, where it can be installed (else a skip that says
//   why).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AglmError } from '../../lib/errors.js';
import { TokenType, type Tokenizer } from '../../lib/tokenizer/index.js';
import { openPeerOrSkip } from '../peer/peer-harness.js';
import { FIXTURE_DIR, loadTokenizer, PLAIN } from './load.js';

/** Every vocabulary of the fixture folder: [name, path]. */
const VOCABS = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.gguf'))
  .sort()
  .map((f) => [f.replace(/^ggml-vocab-/, '').replace(/\.gguf$/, ''), join(FIXTURE_DIR, f)] as const);

const path = (name: string) => join(FIXTURE_DIR, `ggml-vocab-${name}.gguf`);
const ids = (a: Uint32Array) => Array.from(a);

test('the fixture folder has the vocabularies these tests name', () => {
  const names = VOCABS.map(([n]) => n);
  for (const n of ['bert-bge', 'llama-spm', 'llama-bpe', 'phi-3', 'qwen2', 'gpt-2', 'deepseek-llm']) assert.ok(names.includes(n), n);
});

// --- addSpecial ------------------------------------------------------------------------------------------------

test('addSpecial: false adds no special token (bert-bge, llama-spm, llama-bpe); true adds what the flags say', async () => {
  const text = 'Hello world, again';
  for (const name of ['bert-bge', 'llama-spm', 'llama-bpe', 'gpt-2', 'qwen2', 'phi-3', 'deepseek-llm']) {
    const t = await loadTokenizer(path(name));
    const plain = ids(t.encode(text, PLAIN));
    assert.ok(plain.length > 0);
    assert.deepEqual(ids(t.encode(text, { addSpecial: false })), plain, `${name}: addSpecial false`);
    const expected = [
      ...(t.addBos ? [t.bos!] : []),
      ...plain,
      ...(t.addEos ? [t.eos!] : []),
      ...(t.addSep ? [t.sep!] : []),
    ];
    assert.deepEqual(ids(t.encode(text, { addSpecial: true })), expected, `${name}: addSpecial true`);
    assert.deepEqual(ids(t.encode(text)), expected, `${name}: the default is addSpecial true`);
    assert.deepEqual(ids(t.encode(text, {})), expected, `${name}: the default is addSpecial true`);
    // The empty text: only the special tokens.
    assert.deepEqual(ids(t.encode('', { addSpecial: false })), []);
    const edges = [...(t.addBos ? [t.bos!] : []), ...(t.addEos ? [t.eos!] : []), ...(t.addSep ? [t.sep!] : [])];
    assert.deepEqual(ids(t.encode('', { addSpecial: true })), edges);
  }
  // What each vocabulary's flags are (llama.cpp's defaults where the file has no key).
  const bert = await loadTokenizer(path('bert-bge'));
  assert.deepEqual([bert.addBos, bert.addEos, bert.addSep, bert.bos, bert.sep], [true, false, true, 101, 102]);
  const spm = await loadTokenizer(path('llama-spm'));
  assert.deepEqual([spm.addBos, spm.addEos, spm.addSep, spm.bos], [true, false, false, 1]);
  const l3 = await loadTokenizer(path('llama-bpe'));
  assert.deepEqual([l3.addBos, l3.addEos, l3.addSep, l3.bos], [true, false, false, 128000]);
  const gpt2 = await loadTokenizer(path('gpt-2'));
  assert.deepEqual([gpt2.addBos, gpt2.addEos, gpt2.addSep], [false, false, false]);
});

test('addSpecial: BERT with addSpecial false has neither [CLS] nor [SEP]; addBos false alone keeps [SEP]', async () => {
  const bert = await loadTokenizer(path('bert-bge'));
  const body = ids(bert.encode('hello world', PLAIN));
  assert.deepEqual(ids(bert.encode('hello world', { addSpecial: false })), body);
  assert.deepEqual(ids(bert.encode('hello world', { addSpecial: true })), [101, ...body, 102]);
  // addBos/addEos/addSep override addSpecial for their one token, in both directions.
  assert.deepEqual(ids(bert.encode('hello world', { addBos: false })), [...body, 102]);
  assert.deepEqual(ids(bert.encode('hello world', { addSpecial: false, addBos: true })), [101, ...body]);
  assert.deepEqual(ids(bert.encode('hello world', { addSpecial: false, addSep: true })), [...body, 102]);
  assert.deepEqual(ids(bert.encode('hello world', { addSpecial: true, addSep: false })), [101, ...body]);
  assert.deepEqual(ids(bert.encode('hello world', { addSpecial: true, addBos: false, addSep: false })), body);
  // BERT has no EOS token: addEos asks for nothing there is.
  assert.deepEqual(ids(bert.encode('hello world', { addSpecial: false, addEos: true })), body);
});

test('addSpecial: the precedence on SentencePiece and BPE vocabularies', async () => {
  const spm = await loadTokenizer(path('llama-spm'));
  const body = ids(spm.encode('Hello', PLAIN));
  assert.deepEqual(ids(spm.encode('Hello', { addSpecial: true })), [1, ...body]);
  assert.deepEqual(ids(spm.encode('Hello', { addSpecial: true, addEos: true })), [1, ...body, 2]);
  assert.deepEqual(ids(spm.encode('Hello', { addSpecial: false, addEos: true })), [...body, 2]);
  assert.deepEqual(ids(spm.encode('Hello', { addSpecial: false, addBos: true })), [1, ...body]);
  assert.deepEqual(ids(spm.encode('Hello', { addBos: false })), body);
  // A vocabulary without a SEP token adds none, whatever is asked.
  assert.deepEqual(ids(spm.encode('Hello', { addSpecial: true, addSep: true })), [1, ...body]);
  // GPT-2 adds nothing by default; asking for BOS gives its <|endoftext|>.
  const gpt2 = await loadTokenizer(path('gpt-2'));
  const g = ids(gpt2.encode('Hello', PLAIN));
  assert.deepEqual(ids(gpt2.encode('Hello', { addSpecial: true })), g);
  assert.deepEqual(ids(gpt2.encode('Hello', { addSpecial: false, addBos: true })), [50256, ...g]);
  // addSpecial says nothing about parsing special-token text: that is `special`.
  const l3 = await loadTokenizer(path('llama-bpe'));
  const eot = l3.vocab.idOf('<|eot_id|>')!;
  assert.deepEqual(ids(l3.encode('<|eot_id|>', { addSpecial: false, special: true })), [eot]);
  assert.ok(!ids(l3.encode('<|eot_id|>', { addSpecial: true })).includes(eot));
});

test('addSpecial and the other flags: booleans or undefined, else INVALID_ARGUMENT naming the option', async () => {
  const t = await loadTokenizer(path('llama-spm'));
  for (const name of ['addSpecial', 'addBos', 'addEos', 'addSep', 'special']) {
    for (const bad of [null, 0, 1, 'true', {}]) {
      assert.throws(
        () => t.encode('x', { [name]: bad } as object),
        (e: unknown) => e instanceof AglmError && e.code === 'INVALID_ARGUMENT' && e.message.includes(name),
        `${name}: ${JSON.stringify(bad)}`,
      );
    }
    assert.doesNotThrow(() => t.encode('x', { [name]: undefined }));
  }
});

// --- special: false keeps control-token text as text ----------------------------------------------------------------

/** Special-token texts common across model families; in a vocabulary without them they are just text. */
const COMMON_TEXTS = [
  '</s>', '<s>', '<unk>', '<pad>', '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|end|>', '<|user|>', '<|eot_id|>',
  '<|begin_of_text|>', '<|end_of_text|>', '[CLS]', '[SEP]', '[PAD]', '[MASK]', '[UNK]',
];

/**
 * Where a token's text goes: alone, between words, at the edges, with spaces, tabs, newlines and non-ASCII spaces
 * (which lstrip/rstrip keep, as llama.cpp's isspace does) around it.
 */
const SHAPES: readonly ((s: string, o: string) => string)[] = [
  (s) => s,
  (s) => `Hello ${s} world`,
  (s) => `Hello${s}world`,
  (s) => ` ${s} `,
  (s) => `${s}\n`,
  (s) => `a\n${s}\nb`,
  (s) => `a  ${s}  \n  b`,
  (s) => `\t${s}\t x`,
  (s) => `a\u00a0${s}\u00a0\u3000b\r\n`,
  (s) => `${s}${s} end`,
  (s, o) => `x ${s} ${o}\n\ny`,
  (s, o) => `${o}  ${s}`,
];

/**
 * The special-token texts of a vocabulary to try: its BOS/EOS/UNK/SEP, control tokens (up to 24, spread over the
 * vocabulary), some unknown-type tokens (never matched without special either), user-defined ones (always matched),
 * and the common texts.
 */
function specialTexts(t: Tokenizer): { control: string[]; userDefined: string[] } {
  const v = t.vocab;
  const control: number[] = [];
  const unknown: number[] = [];
  const userDefined: number[] = [];
  for (let id = 0; id < v.size; id++) {
    const type = v.type(id);
    if (type === TokenType.control) control.push(id);
    else if (type === TokenType.unknown) unknown.push(id);
    else if (type === TokenType.userDefined) userDefined.push(id);
  }
  const spread = (a: number[], n: number) => (a.length <= n ? a : Array.from({ length: n }, (_, i) => a[Math.floor((i * a.length) / n)]));
  const named = [t.bos, t.eos, t.unk, t.sep].filter((id): id is number => id !== undefined);
  const texts = new Set([...named, ...spread(control, 24), ...spread(unknown, 4)].map((id) => v.piece(id)));
  for (const s of COMMON_TEXTS) texts.add(s);
  return { control: [...texts].filter((s) => s.length > 0), userDefined: spread(userDefined, 4).map((id) => v.piece(id)) };
}

/** Texts with each special-token text of the vocabulary in each shape, paired with another one. */
function textsFor(t: Tokenizer): { control: string[]; userDefined: string[] } {
  const { control, userDefined } = specialTexts(t);
  const build = (list: string[]) =>
    list.flatMap((s, i) => SHAPES.map((shape) => shape(s, list[(i + 1) % list.length])));
  return { control: build(control), userDefined: build([...userDefined, ...control.slice(0, 2)]) };
}

/** Ids that only special-token parsing may produce: control and unknown-type tokens. */
function isSpecialOnly(t: Tokenizer, id: number): boolean {
  const type = t.vocab.type(id);
  return type === TokenType.control || type === TokenType.unknown;
}

for (const [name, file] of VOCABS) {
  test(`${name}: with special false, control-token text stays text and decodes back`, async () => {
    const t = await loadTokenizer(file);
    const { control } = textsFor(t);
    for (const text of control) {
      const got = ids(t.encode(text, PLAIN));
      const bad = got.filter((id) => isSpecialOnly(t, id));
      assert.deepEqual(bad, [], `${name}: ${JSON.stringify(text)} gave special-only ids ${bad.join(' ')}`);
      const back = t.decode(got);
      if (t.family === 'wordpiece') {
        // WordPiece lowercases and splits punctuation off: the same characters, spaced differently.
        assert.equal(back.replace(/\s+/g, ''), text.toLowerCase().replace(/\s+/g, ''), `${name}: ${JSON.stringify(text)}`);
      } else {
        assert.equal(back, text, `${name}: ${JSON.stringify(text)}`);
      }
    }
  });

  test(`${name}: with special true, each control-token text is its token`, async () => {
    const t = await loadTokenizer(file);
    for (const s of specialTexts(t).control) {
      const id = t.vocab.idOf(s);
      if (id === undefined || t.vocab.type(id) !== TokenType.control) continue;
      assert.ok(ids(t.encode(`a ${s} b`, { ...PLAIN, special: true })).includes(id), `${name}: ${JSON.stringify(s)}`);
      assert.deepEqual(ids(t.encode(s, { ...PLAIN, special: true })), [id], `${name}: ${JSON.stringify(s)}`);
    }
  });
}

test("phi-3: '</s>' (user-defined in the file, control for llama.cpp) stays text and keeps its spaces", async () => {
  const phi = await loadTokenizer(path('phi-3'));
  const spm = await loadTokenizer(path('llama-spm'));
  for (const text of ['Hello </s> world', 'a</s>', '</s>', 'x\n</s>\n y']) {
    const got = ids(phi.encode(text, PLAIN));
    assert.ok(!got.includes(2), JSON.stringify(text));
    // The same SentencePiece pieces as llama-spm, whose '</s>' is a control token.
    assert.deepEqual(got, ids(spm.encode(text, PLAIN)), JSON.stringify(text));
    assert.equal(phi.decode(got), text);
  }
  // Parsed: the token, and (rstrip) the whitespace after it dropped.
  const hello = ids(phi.encode('Hello ', PLAIN));
  const world = ids(phi.encode('world', PLAIN));
  assert.deepEqual(ids(phi.encode('Hello </s> world', { ...PLAIN, special: true })), [...hello, 2, ...world]);
  assert.deepEqual(ids(phi.encode('Hello </s>\n\t world', { ...PLAIN, special: true })), [...hello, 2, ...world]);
  // rstrip drops ASCII whitespace only (C's isspace, as llama.cpp): a no-break space after the token stays.
  const nbsp = ids(phi.encode('Hello </s>\u00a0world', { ...PLAIN, special: true }));
  assert.deepEqual(nbsp.slice(0, hello.length + 1), [...hello, 2]);
  assert.notDeepEqual(nbsp, [...hello, 2, ...world]);
  // Its unknown-type padding tokens also drop the whitespace after them when parsed.
  const pad = phi.vocab.idOf('[PAD32011]')!;
  assert.equal(phi.vocab.type(pad), TokenType.unknown);
  assert.deepEqual(ids(phi.encode('[PAD32011] z', { ...PLAIN, special: true })), [pad, ...ids(phi.encode('z', PLAIN))]);
  // '<s>', '<unk>' and '<|endoftext|>' keep it.
  assert.deepEqual(ids(phi.encode('a <s> b', { ...PLAIN, special: true })).slice(-2), [29871, 289]);
});

// --- the same ids as llama.cpp --------------------------------------------------------------------------------------

/** The part of node-llama-cpp's API used here (typed locally: it is not a dependency). */
interface PeerVocabModel {
  tokenize(text: string, specialTokens?: boolean): readonly number[];
  detokenize(tokens: readonly number[], specialTokens?: boolean): string;
  readonly vocabularyType: string;
  readonly tokens: {
    readonly bos: number | null;
    readonly eos: number | null;
    readonly sep: number | null;
    readonly shouldPrependBosToken: boolean;
    readonly shouldAppendEosToken: boolean;
  };
  dispose(): Promise<void>;
}
interface PeerVocabLlama {
  loadModel(options: { modelPath: string; vocabOnly: boolean }): Promise<PeerVocabModel>;
}

test('special true and false, addSpecial true: the same ids as llama.cpp (node-llama-cpp 3.22.1)', { timeout: 15 * 60_000 }, async (t) => {
  const llama = (await openPeerOrSkip(t)) as unknown as PeerVocabLlama | undefined;
  if (!llama) return;
  for (const [name, file] of VOCABS) {
    const tok = await loadTokenizer(file);
    const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
    try {
      const { control, userDefined } = textsFor(tok);
      const texts = [...control, ...userDefined];
      let compared = 0;
      const mismatches: string[] = [];
      for (const text of texts) {
        for (const special of [false, true]) {
          const ours = ids(tok.encode(text, { addSpecial: false, special }));
          const theirs = Array.from(model.tokenize(text, special));
          compared++;
          if (ours.join(' ') !== theirs.join(' ')) {
            mismatches.push(`${JSON.stringify(text)} special=${special}\n  ours:     ${ours.join(' ')}\n  llama.cpp: ${theirs.join(' ')}`);
          } else if (!special) {
            // The round trip: the same text as llama.cpp's detokenizer gives for the same ids. (Its detokenizer keeps
            // WordPiece's word separator before the first word: ours does with atStart false.)
            const a = tok.decode(ours, { atStart: tok.family !== 'wordpiece' });
            const b = model.detokenize(theirs, false);
            if (a !== b) mismatches.push(`decode ${JSON.stringify(text)}: ours ${JSON.stringify(a)}, llama.cpp ${JSON.stringify(b)}`);
          }
        }
        // add_special: llama.cpp's llama_tokenize(add_special = true) puts BOS/EOS as the vocabulary's flags say;
        // WordPiece always [CLS] first and [SEP] last.
        const body = Array.from(model.tokenize(text, false));
        const p = model.tokens;
        const withSpecial =
          model.vocabularyType === 'wpm'
            ? [p.bos!, ...body, p.sep!]
            : [...(p.shouldPrependBosToken ? [p.bos!] : []), ...body, ...(p.shouldAppendEosToken ? [p.eos!] : [])];
        const ours = ids(tok.encode(text, { addSpecial: true }));
        if (ours.join(' ') !== withSpecial.join(' ')) {
          mismatches.push(`addSpecial ${JSON.stringify(text)}\n  ours:     ${ours.join(' ')}\n  llama.cpp: ${withSpecial.join(' ')}`);
        }
      }
      t.diagnostic(`${name}: ${texts.length} texts, ${compared} encodings, ${mismatches.length} mismatches`);
      assert.equal(mismatches.length, 0, `${name}: ${mismatches.length} mismatches, first:\n${mismatches.slice(0, 5).join('\n')}`);
    } finally {
      await model.dispose();
    }
  }
});
