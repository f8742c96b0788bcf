// The glm4 architecture (GLM-4-0414 and GLM-Z1): chatglm's layout (fused or separate QKV, fused gate/up, rope type
// NORM on `rope.dimension_count` dims) plus an RMS norm of the attention output (`post_attention_norm`) and of the
// FFN output (`post_ffw_norm`), each applied before its residual add, as llama.cpp's glm4 graph does. Multimodal
// M-RoPE (`rope.dimension_sections`, the vision models) is not supported.
import { AglmError } from '../errors.js';
import { CHATGLM_LAYOUT } from './chatglm.js';
import { decoderArchitecture } from './decoder.js';

export const glm4 = decoderArchitecture('glm4', { ...CHATGLM_LAYOUT, postNorms: true }, (file) => {
  if (file.metadata.has('glm4.rope.dimension_sections')) {
    throw new AglmError('UNSUPPORTED_ARCH', `glm4 with M-RoPE (glm4.rope.dimension_sections, the vision models) is not supported yet`);
  }
});
