// quantizeModel(): rewrites a GGUF model with its weight matrices in another type, converting tensor by tensor on a
// native worker (streamed: never the whole model in memory). Norms and biases stay F32. The precisions (f32, bf16,
// f16, q8_0, q4_0) use one type throughout (tensorTypeFor); llama.cpp's file types (q4_1, q5_0, q5_1, q4_k = Q4_K_S,
// q5_k = Q5_K_S, q6_k, q4_k_m, q5_k_m) follow llama.cpp's per-tensor rules (llamaMixTensorType) and its quantizers,
// so the bytes are the ones llama-quantize writes without an importance matrix.
import { open, stat } from 'node:fs/promises';
import { AglmError, invalidArgument } from '../errors.js';
import {
  LLAMA_MIXES,
  LLAMA_MIX_INFO,
  PRECISIONS,
  PRECISION_TYPES,
  llamaMixTensorType,
  mixModelInfo,
  tensorTypeFor,
  type LlamaMix,
  type Precision,
} from '../backends/weight-types.js';
import { GgufValueType, ggmlTensorBytes, ggmlTypeName, readGguf, writeGguf } from '../gguf/index.js';
import type { GgufEntry, GgufTensorInfo } from '../gguf/index.js';
import { fromNative, nativeBinding } from '../native.js';
import { checkObject, optSignal } from '../validate.js';

export const QUANTIZE_TYPES = [...PRECISIONS, ...LLAMA_MIXES] as const;
export type QuantizeType = Precision | LlamaMix;

/** llama.cpp's `general.file_type` values (enum llama_ftype) for what we write. */
const FILE_TYPES: Record<QuantizeType, number> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q8_0: 7,
  bf16: 32,
  ...Object.fromEntries(LLAMA_MIXES.map((m) => [m, LLAMA_MIX_INFO[m].fileType])),
} as Record<QuantizeType, number>;

const isMix = (type: QuantizeType): type is LlamaMix => (LLAMA_MIXES as readonly string[]).includes(type);

export interface QuantizeOptions {
  signal?: AbortSignal;
}

export interface QuantizeReport {
  type: QuantizeType;
  inputBytes: number;
  outputBytes: number;
  tensors: { name: string; from: string; to: string; reason?: string }[];
}

export async function quantizeModel(input: string, output: string, type: QuantizeType, options?: QuantizeOptions): Promise<QuantizeReport> {
  const site = new Error();
  if (typeof input !== 'string' || !input) throw invalidArgument('input', 'a file path', input);
  if (typeof output !== 'string' || !output) throw invalidArgument('output', 'a file path', output);
  if (!(QUANTIZE_TYPES as readonly string[]).includes(type)) throw invalidArgument('type', `one of ${QUANTIZE_TYPES.join(', ')}`, type);
  const signal = optSignal('signal', checkObject<QuantizeOptions>('quantize options', options).signal);
  const src = await readGguf(input, { signal });
  const mix = isMix(type) ? mixModelInfo(src.metadata, src.tensors) : undefined;
  const hasOutput = src.tensor('output.weight') !== undefined;
  const native = nativeBinding();
  const report: QuantizeReport = { type, inputBytes: src.fileSize, outputBytes: 0, tensors: [] };

  const metadata: GgufEntry[] = src.metadata
    .entries()
    .filter((e) => e.key !== 'general.file_type' && e.key !== 'general.quantization_version' && e.key !== 'general.alignment');
  metadata.push({ key: 'general.file_type', type: GgufValueType.UINT32, value: FILE_TYPES[type] });
  if (type !== 'f32' && type !== 'f16' && type !== 'bf16') metadata.push({ key: 'general.quantization_version', type: GgufValueType.UINT32, value: 2 });

  const fh = await open(input, 'r');
  try {
    const tensors = src.tensors.map((t) => {
      const isOutput = t.name === 'output.weight' || (!hasOutput && t.name === 'token_embd.weight');
      const { type: to, reason } = mix ? llamaMixTensorType(t, type as LlamaMix, mix) : tensorTypeFor(t, PRECISION_TYPES[type as Precision], isOutput);
      report.tensors.push({ name: t.name, from: ggmlTypeName(t.type), to: ggmlTypeName(to), reason });
      const data = async (): Promise<Uint8Array> => {
        if (signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason });
        const bytes = new Uint8Array(t.byteLength);
        const { bytesRead } = await fh.read(bytes, 0, t.byteLength, t.offset);
        if (bytesRead !== t.byteLength) throw new AglmError('GGUF_TRUNCATED', `Tensor '${t.name}' ends past the end of ${input}`);
        if (to === t.type) return bytes;
        const rows = t.nElements / t.dims[0];
        const out = new Uint8Array(ggmlTensorBytes(to, t.dims));
        try {
          await native.convertRows(t.type, bytes, to, rows, t.dims[0], out);
        } catch (e) {
          throw fromNative(e, site);
        }
        return out;
      };
      return { name: t.name, type: to, dims: t.dims, data };
    });
    await writeGguf(output, { version: 3, alignment: src.alignment, metadata, tensors });
  } finally {
    await fh.close();
  }
  report.outputBytes = (await stat(output)).size;
  return report;
}
