// The chatglm architecture (ChatGLM2, ChatGLM3, GLM-4-9B as llama.cpp's converter writes them): the shared decoder
// (decoder.ts) with the fused `attn_qkv` (q rows, then k, then v, with its bias) used in place through row views
// (separate attn_q/k/v are accepted too, as llama.cpp does), grouped KV heads, rotary embedding on the first
// `rope.dimension_count` dims of each head (half of them) in interleaved pairs (llama.cpp's rope type NORM), and a
// fused `ffn_up` of 2 * n_ff rows whose first half is the gate: silu(first) * second.
import { ROPE_NORMAL } from '../graph/ir.js';
import { decoderArchitecture, type DecoderLayout } from './decoder.js';

export const CHATGLM_LAYOUT: DecoderLayout = { ropeMode: ROPE_NORMAL, qkv: 'fused-or-separate', ffn: 'fused-up' };

export const chatglm = decoderArchitecture('chatglm', CHATGLM_LAYOUT);
