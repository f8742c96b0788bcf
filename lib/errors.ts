// The one error class of open-autoglm: every failure the library reports carries a stable `code`.

/** Every code the library can report. Native status codes map onto these (see native/core/status.h). */
export const ERROR_CODES = [
  // options and lifecycle
  'INVALID_ARGUMENT', // an option or argument has the wrong type or range
  'DISPOSED', // the model or context was disposed
  'BUSY', // the sequence (or context) is already running an evaluation
  'NO_SEQUENCE_LEFT', // every sequence the context allows is in use
  'ABORTED', // the caller's AbortSignal fired
  'CONTEXT_FULL', // the tokens do not fit in the context
  'CHAT_TEMPLATE_ERROR', // a chat template does not parse, or fails or refuses the messages while rendering
  'INVALID_GRAMMAR', // a GBNF grammar or JSON schema that does not parse or is not supported; a grammar no token can continue
  'INVALID_IMAGE', // an image that does not decode, is too large, or is given in a form not accepted (a URL)
  'NO_PROJECTOR', // an image was given to a model loaded without a vision projector
  // files
  'FILE_NOT_FOUND',
  'IO_ERROR',
  'GGUF_BAD_MAGIC',
  'GGUF_UNSUPPORTED_VERSION',
  'GGUF_TRUNCATED', // header or tensor data ends before the file says it does
  'GGUF_INVALID', // a count, length, or value that cannot be right (past the end of the file, bad alignment, duplicate key...)
  'GGUF_UNKNOWN_TENSOR_TYPE',
  'GGUF_TENSOR_OUT_OF_BOUNDS', // tensor data outside the file's data section
  'GGUF_TENSOR_OVERLAP', // two tensors' data overlap
  'GGUF_MISSING_KEY', // a metadata key the architecture requires is absent or has the wrong type
  'GGUF_MISSING_TENSOR', // a tensor the architecture requires is absent
  'GGUF_SHAPE_MISMATCH', // a tensor's shape disagrees with the hyper-parameters
  'UNSUPPORTED_ARCH',
  'UNSUPPORTED_TENSOR_TYPE', // a known GGML type that this build cannot compute with yet
  'UNSUPPORTED_TOKENIZER',
  // hardware and native
  'BACKEND_UNAVAILABLE', // asked for a backend or CPU variant this machine or build lacks
  'NATIVE_LOAD_FAILED', // the addon could not be loaded
  'KERNEL_PLUGIN_INVALID', // a kernel plugin that does not load, lacks its entry symbol, or is built for another ABI version
  'OUT_OF_MEMORY',
  'NATIVE_ERROR', // an internal native failure (a bug if you see it)
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The error every open-autoglm API throws or rejects with. */
export class AglmError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AglmError';
    this.code = code;
  }
}

export function isAglmError(e: unknown, code?: ErrorCode): e is AglmError {
  return e instanceof AglmError && (code === undefined || e.code === code);
}

/** Describe a received value for error messages: `"abc" of type string`. */
export function describeValue(value: unknown): string {
  let shown: string;
  if (typeof value === 'string') shown = JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  else if (typeof value === 'bigint') shown = `${value}n`;
  else if (typeof value === 'function') shown = `function ${value.name || '(anonymous)'}`;
  else if (value === null || typeof value !== 'object') shown = String(value);
  else if (Array.isArray(value)) shown = `array of length ${value.length}`;
  else shown = Object.prototype.toString.call(value);
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `${shown} of type ${type}`;
}

/** The one wording for a bad option: "Expected <what> for <name> but received <value> of type <type>". */
export function invalidArgument(name: string, expected: string, received: unknown): AglmError {
  return new AglmError('INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${describeValue(received)}`);
}
