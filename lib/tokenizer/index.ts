// Public surface of the tokenizer: GGUF vocabulary, SentencePiece BPE encoding, decoding and streaming decoding.
export { Tokenizer, type EncodeOptions } from './tokenizer.js';
export { StreamDecoder, type DecodeOptions } from './stream-decoder.js';
export { Vocab, TokenType, type VocabInit, type VocabMetadata } from './vocab.js';
