// The public surface of the GGUF module: types, the GGML type table, metadata access, reading and writing.
export { GgmlType, ggmlRowBytes, ggmlTensorBytes, ggmlTypeInfo, ggmlTypeName } from './ggml-types.js';
export type { GgmlTypeId, GgmlTypeInfo, GgmlTypeName } from './ggml-types.js';
export { GgufValueType } from './types.js';
export type { GgufArray, GgufEntry, GgufTensorInfo, GgufValue } from './types.js';
export { GgufMetadata } from './metadata.js';
export type { GgufNumberArray } from './metadata.js';
export { GGUF_ALIGNMENT_KEY, GGUF_DEFAULT_ALIGNMENT, GgufNeedMore, parseGguf, readGguf } from './reader.js';
export type { GgufFile, ReadGgufOptions } from './reader.js';
export { serializeGguf, serializeGgufHeader, writeGguf } from './writer.js';
export type { GgufTensorData, GgufWriteSpec, GgufWriteTensor } from './writer.js';
