// The qwen2 architecture (Qwen1.5, Qwen2, Qwen2.5): the shared decoder (decoder.ts) with separate q/k/v that carry
// biases (required, as in llama.cpp), ffn_gate/ffn_up, and NEOX rope (pairs (x[i], x[i + n_rot/2])); linear or YaRN
// rope scaling. Qwen's `sliding_window` is not applied: llama.cpp ignores it for qwen2 (see decoder.ts).
import { ROPE_NEOX } from '../graph/ir.js';
import { decoderArchitecture, type DecoderLayout } from './decoder.js';

export const QWEN2_LAYOUT: DecoderLayout = { ropeMode: ROPE_NEOX, qkv: 'separate', qkvBiasRequired: true, ffn: 'gate-up' };

export const qwen2 = decoderArchitecture('qwen2', QWEN2_LAYOUT);
