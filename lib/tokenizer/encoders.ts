// The text-run encoders of each family: what turns one run of plain text (between special tokens) into ids.
import type { BpeModel } from './bpe.js';
import { encodeSpm } from './spm.js';
import type { Vocab } from './vocab.js';
import { bertNormalize, bertPreTokenize, type BertNormalizerOptions, type WordPieceModel } from './wordpiece.js';

export interface TextRunEncoder {
  /** Appends the ids of `text`. `first`: the run starts the input (nothing, not even a special token, before it). */
  encode(text: string, first: boolean, out: number[]): void;
}

/** Text -> text (Unicode normalization, lowercasing, space escaping...). */
export type Normalizer = (text: string) => string;

/** Text -> words. `first` as in TextRunEncoder.encode. */
export type PreTokenizer = (text: string, first: boolean) => string[];

/** SentencePiece BPE ('llama'): the space prefix goes before every run (each starts the input or follows a special token). */
export class SpmEncoder implements TextRunEncoder {
  readonly #vocab: Vocab;

  constructor(vocab: Vocab) {
    this.#vocab = vocab;
  }

  encode(text: string, _first: boolean, out: number[]): void {
    encodeSpm(this.#vocab, text, this.#vocab.addSpacePrefix, out);
  }
}

/** normalize -> pre-tokenize -> BPE per word. */
export class BpeEncoder implements TextRunEncoder {
  readonly #model: BpeModel;
  readonly #normalize: Normalizer | undefined;
  readonly #preTokenize: PreTokenizer;

  constructor(model: BpeModel, preTokenize: PreTokenizer, normalize?: Normalizer) {
    this.#model = model;
    this.#preTokenize = preTokenize;
    this.#normalize = normalize;
  }

  encode(text: string, first: boolean, out: number[]): void {
    const s = this.#normalize === undefined ? text : this.#normalize(text);
    if (s.length === 0) return;
    const words = this.#preTokenize(s, first);
    for (let i = 0; i < words.length; i++) this.#model.encodeWord(words[i], out);
  }
}

/** normalize -> pre-tokenize -> WordPiece per word. Defaults: BERT's normalizer and basic tokenizer. */
export class WordPieceEncoder implements TextRunEncoder {
  readonly #model: WordPieceModel;
  readonly #normalize: Normalizer | undefined;
  readonly #preTokenize: PreTokenizer;

  constructor(model: WordPieceModel, normalize: Normalizer | undefined, preTokenize: PreTokenizer) {
    this.#model = model;
    this.#normalize = normalize;
    this.#preTokenize = preTokenize;
  }

  static bert(model: WordPieceModel, options: BertNormalizerOptions): WordPieceEncoder {
    return new WordPieceEncoder(model, (s) => bertNormalize(s, options), bertWords);
  }

  encode(text: string, first: boolean, out: number[]): void {
    const s = this.#normalize === undefined ? text : this.#normalize(text);
    for (const w of this.#preTokenize(s, first)) this.#model.encodeWord(w, out);
  }
}

/** BERT's basic tokenizer as a PreTokenizer. */
export function bertWords(text: string): string[] {
  const out: string[] = [];
  bertPreTokenize(text, out);
  return out;
}
