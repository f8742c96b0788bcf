// The llama architecture (Llama 1/2/3, TinyLlama, Mistral-style GQA): the shared decoder (decoder.ts) with separate
// q/k/v (optional biases), ffn_gate/ffn_up, rope on pairs (x[2i], x[2i+1]), linear or YaRN rope scaling, and Llama 3's
// frequency factors (`rope_freqs.weight`) when the file has them; tied or separate output weights.
import { ROPE_NORMAL } from '../graph/ir.js';
import { decoderArchitecture, type DecoderLayout } from './decoder.js';

export const LLAMA_LAYOUT: DecoderLayout = { ropeMode: ROPE_NORMAL, qkv: 'separate', ffn: 'gate-up', ropeFreqFactors: true };

export const llama = decoderArchitecture('llama', LLAMA_LAYOUT);
