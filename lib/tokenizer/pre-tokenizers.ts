// The pre-tokenizers of byte-level BPE vocabularies, by the name GGUF files store in `tokenizer.ggml.pre`: the list of
// regexes that cut text into words before BPE, and the few flags that go with a name. This is data: adding a
// pre-tokenizer is adding an entry.
//
// The names and what they stand for follow llama.cpp (src/llama-vocab.cpp). The regexes are written as the model's
// Hugging Face tokenizer.json has them (Oniguruma syntax), and are translated to JS by onig-regex.ts. Where llama.cpp
// rewrote a pattern for its own engine (e.g. (?i:'s|...) spelled as '[sS]|..., or [\p{Lu}...] approximated with
// lookaheads), the original is used here, since the original's meaning is what the model was trained with.
//
// Every regex splits each piece left by the previous one: its matches and the text between matches both become pieces
// (Hugging Face's Split with behavior "Isolated"). A lookahead never sees past the end of the piece it runs on.

export interface PreTokenizerSpec {
  /** Oniguruma patterns applied in order. */
  readonly regexes: readonly string[];
  /** A word that is itself a vocabulary token is emitted as that token, without merging (tokenizers' ignore_merges). */
  readonly ignoreMerges?: boolean;
  /** Add BOS when the file has no tokenizer.ggml.add_bos_token key. */
  readonly addBos?: boolean;
  /** The model has no BOS token even if the file names one (GLM-4). */
  readonly noBos?: boolean;
  /** Add SEP (or EOS) at the end when the file has no key for it (RoBERTa-style encoders). */
  readonly addSep?: boolean;
  /** Unicode normalization the model's tokenizer applies before splitting. */
  readonly normalize?: 'NFC';
  /**
   * false: the vocabulary holds raw UTF-8 text (SentencePiece-style BPE, byte fallback through '<0xXX>' tokens), not
   * GPT-2 byte-level characters. Default true.
   */
  readonly byteLevel?: boolean;
  /** Spaces are written as '▁' (U+2581) before splitting, as SentencePiece does. */
  readonly escapeSpaces?: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// The patterns.

/** GPT-2 (and its ByteLevel pre-tokenizer with use_regex). */
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** Llama 3 (tiktoken cl100k-like); also GLM-4, DBRX, Smaug. */
const LLAMA3 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Qwen2: as Llama 3 but one digit per piece. */
const QWEN2 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Qwen3.5: marks join letters. */
const QWEN35 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Jais 2: Llama 3 with whitespace runs cut into power-of-two lengths. */
const JAIS2 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" +
  '\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}';

/** GPT-4o (tiktoken o200k): case-aware words with contractions attached. Also Llama 4, MiniMax-M2, Tiny Aya. */
const GPT4O =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" +
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" +
  '\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

/** Mistral Tekken: as GPT-4o without contractions, one digit per piece. */
const TEKKEN =
  '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|' +
  '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|' +
  '\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

/** Youtu: CJK/Hangul/punctuation runs first, then the GPT-4o-style pattern with single digits. */
const YOUTU_CJK = '[\\x{AC00}-\\x{D7A3}\\x{3131}-\\x{318E}]+|[\\x{FF01}\\x{2026}\\x{201C}\\x{201D}\\x{2018}\\x{2019}\\x{2014}\\x{FF1A}\\x{FF1B}\\x{FF0C}\\x{3001}-\\x{303F}\\x{FE30}-\\x{FE4F}]+|[\\x{3105}-\\x{312F}]+|[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+';
const YOUTU =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" +
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" +
  '\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

/** Kimi K2 (tiktoken; Rust regex class intersection): Han runs apart from other letters. */
const KIMI_K2 =
  '[\\p{Han}]+|' +
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" +
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" +
  '\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

/** DeepSeek LLM (v1/v2): newlines, then cased-letter words, ASCII/full-width punctuation, trailing space, CJK, numbers. */
const DEEPSEEK_LLM = [
  '[\\r\\n]',
  '\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+',
  '\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+',
  '\\s+$',
  '[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+',
  '\\p{N}+',
];

/** DeepSeek Coder. */
const DEEPSEEK_CODER = ['[\\r\\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', '[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+', '\\p{N}'];

/** DeepSeek V3 / R1; also Hunyuan dense, HY v4, JoyAI. */
const DEEPSEEK_V3 = [
  '\\p{N}{1,3}',
  '[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+',
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
];

/** Spark 2.5. */
const SPARK2_5 = [
  '\\p{N}{1,3}',
  '[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+',
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\\r\\n]|\\s+(?!\\S)|\\s+",
  '\\p{N}',
];

/** AFMoE: digit runs in groups of three counted from the right, CJK and South-East Asian script runs, then words. */
const AFMOE = [
  '\\p{N}{1,3}(?=(?:\\p{N}{3})*(?!\\p{N}))',
  '[\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{F900}-\\x{FAFF}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}\\x{FF65}-\\x{FF9F}\\x{2F00}-\\x{2FDF}\\x{E40}-\\x{E7F}\\x{E80}-\\x{EFF}\\x{1780}-\\x{17FF}\\x{1000}-\\x{109F}\\x{AA60}-\\x{AA7F}\\x{A9E0}-\\x{A9FF}\\x{AC00}-\\x{D7AF}\\x{1100}-\\x{11FF}]+',
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
];

/** Falcon. */
const FALCON = [
  '[\\p{P}\\$\\+<=>\\^~\\|`]+',
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  '[0-9][0-9][0-9]',
];

/** The 'default' BPE pre-tokenizer of llama.cpp (also used when a file names none). */
const DEFAULT = [
  '[\\p{P}\\$\\+<=>\\^~\\|]+',
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  '\\p{N}+',
  '[0-9][0-9][0-9]',
];

/** Poro, BLOOM, GPT-3 Finnish: everything up to whitespace or sentence punctuation. */
const PORO = ' ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+';

/** Chameleon: sentinel and image tokens, tabs/newlines and space pairs, digits, punctuation, then GPT-2. */
const CHAMELEON = [
  '<sentinel:[0-9]+>',
  '(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z',
  '([\\t\\n]|    |  )',
  '\\p{N}',
  '[\\p{P}!-/:-@\\[-`{-~]',
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
];

/** Tiny Aya / Cohere2 MoE: digit groups of three from the right, then the GPT-4o pattern. */
const TINY_AYA = ['\\d{1,3}(?=(?:\\d{3})*\\b)', GPT4O];

/** Bailing MoE (possessive quantifiers as in the original). */
const BAILINGMOE =
  "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

/** Seed-Coder. */
const SEED_CODER =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Ufakzeka: Qwen2 without the English contractions (Turkish apostrophe suffixes stay with the word). */
const UFAKZEKA = '[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

/** EXAONE MoE: words may contain single spaces between letters. */
const EXAONE_MOE =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

/** Laguna: lines first, then Qwen2-style words. */
const LAGUNA = [
  '[^\\n]+|[\\n]+',
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
];

/** MiniCPM 5: digit groups of up to three, then Llama 3-style words with whole numbers. */
const MINICPM5 = [
  '\\p{N}{1,3}',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
];

/** SuperBPE: numbers, each cut so that its last groups have three digits. */
const SUPERBPE = ['\\p{N}+', '(?=(\\d{3})+(?!\\d))'];

// ---------------------------------------------------------------------------------------------------------------
// Names -> specs. Each row: the names sharing a spec, then the spec.

const ROWS: readonly (readonly [readonly string[], PreTokenizerSpec])[] = [
  [['default'], { regexes: DEFAULT }],
  [
    ['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'],
    { regexes: [LLAMA3], ignoreMerges: true, addBos: true },
  ],
  [['dbrx', 'smaug-bpe'], { regexes: [LLAMA3] }],
  [['glm4', 'chatglm-bpe'], { regexes: [LLAMA3], noBos: true }],
  [['jais-2'], { regexes: [JAIS2] }],
  [['deepseek-llm'], { regexes: DEEPSEEK_LLM }],
  [['deepseek-coder'], { regexes: DEEPSEEK_CODER }],
  [['deepseek-v3', 'hunyuan-dense', 'hy_v4', 'joyai-llm'], { regexes: DEEPSEEK_V3 }],
  [['spark2_5'], { regexes: SPARK2_5 }],
  [['youtu'], { regexes: [YOUTU_CJK, YOUTU], ignoreMerges: true }],
  [['falcon'], { regexes: FALCON }],
  [
    ['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b', 'mellum2'],
    { regexes: ['\\p{N}', GPT2] },
  ],
  [
    [
      'gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'modern-bert',
      'mpt', 'olmo', 'jais', 'exaone4', 'trillion', 'granite-docling',
    ],
    { regexes: [GPT2] },
  ],
  [['jina-v1-en', 'jina-v2-code', 'roberta-bpe'], { regexes: [GPT2], addSep: true }],
  [['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2'], { regexes: [QWEN2], normalize: 'NFC' }],
  [['qwen35'], { regexes: [QWEN35], normalize: 'NFC' }],
  [['stablelm2', 'megrez', 'hunyuan', 'solar-open', 'grok-2'], { regexes: [QWEN2] }],
  [['poro-chat', 'bloom', 'gpt3-finnish'], { regexes: [PORO] }],
  [['viking'], { regexes: [PORO, '\\p{N}'] }],
  [['tekken'], { regexes: [TEKKEN], ignoreMerges: true, addBos: true }],
  [['chameleon'], { regexes: CHAMELEON, addBos: true }],
  [['exaone-moe'], { regexes: [EXAONE_MOE] }],
  [['gpt-4o', 'llama4', 'kanana2', 'talkie', 'minimax-m2'], { regexes: [GPT4O] }],
  [['granite-embed-multi-97m'], { regexes: [GPT4O], ignoreMerges: true }],
  [['tiny_aya', 'cohere2moe'], { regexes: TINY_AYA }],
  [['kimi-k2'], { regexes: [KIMI_K2] }],
  [['superbpe'], { regexes: SUPERBPE }],
  [['bailingmoe', 'bailingmoe2', 'llada-moe'], { regexes: [BAILINGMOE] }],
  [['seed-coder'], { regexes: [SEED_CODER] }],
  [['ufakzeka'], { regexes: [UFAKZEKA] }],
  [['afmoe'], { regexes: AFMOE }],
  [['laguna'], { regexes: LAGUNA }],
  [['minicpm5'], { regexes: MINICPM5, ignoreMerges: true }],
  [['gemma4', 'granite-embed-multi-311m', 'sarvam-moe'], { regexes: ['[^\\n]+|[\\n]+'], byteLevel: false, escapeSpaces: true }],
  [['whitespace'], { regexes: ['\\S+'], byteLevel: false }],
];

function buildTable(): ReadonlyMap<string, PreTokenizerSpec> {
  const table = new Map<string, PreTokenizerSpec>();
  for (const [names, spec] of ROWS) {
    for (const name of names) {
      if (table.has(name)) throw new Error(`pre-tokenizer ${name} listed twice`);
      table.set(name, Object.freeze(spec));
    }
  }
  return table;
}

/** Every `tokenizer.ggml.pre` name this library knows, with its spec. */
export const PRE_TOKENIZERS: ReadonlyMap<string, PreTokenizerSpec> = buildTable();

/** The regex of GPT-2's ByteLevel pre-tokenizer (tokenizer.json `ByteLevel` with use_regex: true). */
export const GPT2_PATTERN = GPT2;
