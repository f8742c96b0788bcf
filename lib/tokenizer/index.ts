// Public surface of the tokenizer: GGUF vocabularies (SentencePiece BPE, byte-level BPE, WordPiece) and Hugging Face
// tokenizer.json, encoding, decoding and streaming decoding.
export { Tokenizer, type EncodeOptions } from './tokenizer.js';
export type { TokenizerFamily } from './parts.js';
export type { TokenizerJsonOptions } from './tokenizer-json.js';
export { StreamDecoder, type DecodeOptions } from './stream-decoder.js';
export { Vocab, TokenType, type VocabInit, type VocabMetadata, type VocabAdjustments } from './vocab.js';
export { PRE_TOKENIZERS, type PreTokenizerSpec } from './pre-tokenizers.js';
export { SUPPORTED_GGUF_MODELS } from './gguf-loaders.js';
export { translateOnigRegex } from './onig-regex.js';
