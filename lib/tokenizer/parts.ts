// What a Tokenizer is made of, whatever it was loaded from.
import type { TextRunEncoder } from './encoders.js';
import type { TokenRenderer } from './renderers.js';
import type { SpecialTokenAttrs } from './special-tokens.js';

/** The tokenizer families: SentencePiece BPE, BPE over merges (byte-level or raw text), WordPiece. */
export type TokenizerFamily = 'spm' | 'bpe' | 'wordpiece';

export interface TokenizerParts {
  readonly family: TokenizerFamily;
  readonly encoder: TextRunEncoder;
  readonly renderer: TokenRenderer;
  /** The GGUF pre-tokenizer name (tokenizer.ggml.pre) for BPE vocabularies loaded from GGUF. */
  readonly preTokenizer?: string;
  /** lstrip/rstrip of special tokens, by id. */
  readonly specialAttrs?: ReadonlyMap<number, SpecialTokenAttrs>;
  /**
   * lstrip/rstrip drop only ASCII whitespace (space, \t, \n, \v, \f, \r: C's isspace, as llama.cpp does for GGUF
   * vocabularies). Default: any Unicode White_Space (Hugging Face tokenizers).
   */
  readonly asciiStrip?: boolean;
}
