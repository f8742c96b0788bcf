// The glm4 architecture (GLM-4-0414 and GLM-Z1): chatglm's layout (fused or separate QKV, fused gate/up, rope type
// NORM on `rope.dimension_count` dims) plus an RMS norm of the attention output (`post_attention_norm`) and of the
// FFN output (`post_ffw_norm`), each applied before its residual add, as llama.cpp's glm4 graph does. GLM-4.1V's text
// model is glm4 with multi-section rope (`rope.dimension_sections`, neox pairs; its converter permuted Q and K for
// that), so image tokens take 3-D positions.
import { CHATGLM_LAYOUT } from './chatglm.js';
import { decoderArchitecture } from './decoder.js';

export const glm4 = decoderArchitecture('glm4', { ...CHATGLM_LAYOUT, postNorms: true });
