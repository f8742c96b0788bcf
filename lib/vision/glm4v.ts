// GLM-4.1V / GLM-4.5V vision tower and projector, from a projector file as llama.cpp's converter writes it
// (`mmproj-*.gguf`, general.architecture 'clip', clip.projector_type 'glm4v'). The graph, per image of px x py patches
// (14 x 14 pixels each) fed in merge-window order (each 2 x 2 window's four patches in a row, windows row by row):
//   patch embedding: the two temporal halves of the 3-D patch convolution summed (a still image is both frames), as
//     matrices over each patch's 3 * 14 * 14 pixels (channel, row, column), plus the bias; RMS norm (v.norm_embd);
//   the learned 24 x 24 position grid resampled bicubically (a = -0.75) to px x py and added;
//   each block: RMS norm, fused QKV, 2-D rope over the whole head (the first half of the rotary pairs by patch row,
//     the second by patch column, each from theta^0), attention over all patches (non-causal), output projection,
//     residual; RMS norm, SwiGLU FFN, residual;
//   post norm (RMS); the patch merger: each window's four patches concatenated channel-major (the 2 x 2 convolution
//     with stride 2) times mm.patch_merger + bias; mm.model.fc; LayerNorm (mm.post_norm, eps 1e-5); exact GELU;
//     SwiGLU (mm.gate / mm.up / mm.down). One output row per window: the image's tokens for the text model.
// Hyper-parameters and tensor names: llama.cpp tools/mtmd (clip.cpp, models/glm4v.cpp), Hugging Face's
// modeling_glm4v.py (Glm4vVisionModel, Glm4vVisionPatchMerger).
import { AglmError } from '../errors.js';
import type { GgufFile } from '../gguf/index.js';
import { GraphBuilder, ROPE_VISION, type IrGraph, type RopeParams, type V } from '../graph/ir.js';

export interface VisionHyperParams {
  projectorType: 'glm4v';
  /** Patch side in pixels (14). */
  patchSize: number;
  /** Patches merged per side into one token (2). */
  merge: number;
  /** The side of the learned position grid in patches (image_size / patch_size: 24 for 336). */
  gridSide: number;
  embeddingLength: number;
  headCount: number;
  headDim: number;
  blockCount: number;
  feedForwardLength: number;
  eps: number;
  ropeTheta: number;
  /** Width of the merger's output (the FC's input). */
  mergerWidth: number;
  /** Width of each output row: the text model's embedding length. */
  outputWidth: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** Preprocessing bounds, in pixels of the resized image (8 and 4096 tokens of 28 x 28 pixels). */
  minPixels: number;
  maxPixels: number;
  /** The most patches one image can have (maxPixels / patchSize^2): the encoder's context size. */
  maxPatches: number;
}

function need(file: GgufFile, key: string): number {
  const v = file.metadata.optNumber(key);
  if (v === undefined || !Number.isFinite(v) || v <= 0) throw new AglmError('GGUF_MISSING_KEY', `The projector file has no usable '${key}'`);
  return v;
}

function triple(file: GgufFile, key: string, fallback: [number, number, number]): [number, number, number] {
  const a = file.metadata.optNumberArray(key);
  if (a === undefined) return fallback;
  const v = Array.from(a as ArrayLike<number>);
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) throw new AglmError('GGUF_MISSING_KEY', `'${key}' must be three numbers`);
  return [v[0], v[1], v[2]];
}

export function readVisionHyperParams(file: GgufFile): VisionHyperParams {
  const md = file.metadata;
  const arch = md.optString('general.architecture');
  if (arch !== 'clip') throw new AglmError('UNSUPPORTED_ARCH', `A projector file has general.architecture 'clip', not '${arch}'`);
  const type = md.optString('clip.vision.projector_type') ?? md.optString('clip.projector_type');
  if (type !== 'glm4v') {
    throw new AglmError('UNSUPPORTED_ARCH', `Projector type '${type}' is not supported yet (supported: glm4v, the GLM-4.1V / GLM-4.5V vision tower)`);
  }
  if (md.optBoolean('clip.has_vision_encoder') === false) throw new AglmError('UNSUPPORTED_ARCH', 'The projector file has no vision encoder');
  if (md.optBoolean('clip.use_gelu') === true) throw new AglmError('UNSUPPORTED_ARCH', 'A glm4v projector with GELU feed-forward layers is not supported (glm4v uses SiLU)');
  const patchSize = need(file, 'clip.vision.patch_size');
  const imageSize = need(file, 'clip.vision.image_size');
  const embeddingLength = need(file, 'clip.vision.embedding_length');
  const headCount = need(file, 'clip.vision.attention.head_count');
  const headDim = embeddingLength / headCount;
  if (!Number.isInteger(headDim) || headDim % 4 !== 0) {
    throw new AglmError('GGUF_SHAPE_MISMATCH', `clip.vision.embedding_length (${embeddingLength}) / head_count (${headCount}) must be a multiple of 4`);
  }
  const merge = md.optNumber('clip.vision.spatial_merge_size') ?? 2;
  if (merge !== 2) throw new AglmError('UNSUPPORTED_ARCH', `glm4v with spatial_merge_size ${merge} is not supported (2 is)`);
  const pos = file.tensor('v.position_embd.weight');
  const gridSide = pos ? Math.round(Math.sqrt(pos.dims[1] ?? 0)) : Math.floor(imageSize / patchSize);
  if (pos && gridSide * gridSide !== pos.dims[1]) throw new AglmError('GGUF_SHAPE_MISMATCH', `v.position_embd.weight has ${pos.dims[1]} rows: not a square grid`);
  const fc = file.tensor('mm.model.fc.weight');
  const down = file.tensor('mm.down.weight');
  if (!fc || !down) throw new AglmError('GGUF_MISSING_TENSOR', "The projector file has no 'mm.model.fc.weight' or 'mm.down.weight'");
  const tokenPixels = patchSize * merge * patchSize * merge;
  const minPixels = 8 * tokenPixels;
  const maxPixels = 4096 * tokenPixels;
  return {
    projectorType: 'glm4v',
    patchSize,
    merge,
    gridSide,
    embeddingLength,
    headCount,
    headDim,
    blockCount: need(file, 'clip.vision.block_count'),
    feedForwardLength: file.tensor('v.blk.0.ffn_up.weight')?.dims[1] ?? need(file, 'clip.vision.feed_forward_length'),
    eps: md.optNumber('clip.vision.attention.layer_norm_epsilon') ?? 1e-6,
    ropeTheta: 10000,
    mergerWidth: fc.dims[0],
    outputWidth: down.dims[1],
    imageMean: triple(file, 'clip.vision.image_mean', [0.48145466, 0.4578275, 0.40821073]),
    imageStd: triple(file, 'clip.vision.image_std', [0.26862954, 0.26130258, 0.27577711]),
    minPixels,
    maxPixels,
    maxPatches: maxPixels / (patchSize * patchSize),
  };
}

/** The vision tower and projector as one graph: input rows are patches, outputs one row per merge window. */
export function buildGlm4vGraph(file: GgufFile, hp: VisionHyperParams): IrGraph {
  const g = new GraphBuilder(file);
  const d = hp.embeddingLength;
  const p = hp.patchSize;
  const pixels = 3 * p * p;
  const eps = hp.eps;
  const vec = (name: string, n = d) => g.weight(name, [n]);
  const optVec = (name: string, n = d) => g.optionalWeight(name, [n]);
  const rms = (x: V, name: string) => {
    const y = g.rmsNorm(x, vec(`${name}.weight`), eps);
    const b = optVec(`${name}.bias`);
    return b === undefined ? y : g.addVector(y, b);
  };
  const matmul = (x: V, name: string, inDim: number, outDim: number) => g.matmul(x, g.weight(`${name}.weight`, [inDim, outDim]), g.optionalWeight(`${name}.bias`, [outDim]));

  const input = g.input(pixels);
  const conv = [p, p, 3, d];
  let x = g.matmul(input, g.weightAs('v.patch_embd.weight', conv, [pixels, d]));
  if (g.hasTensor('v.patch_embd.weight.1')) x = g.add(x, g.matmul(input, g.weightAs('v.patch_embd.weight.1', conv, [pixels, d])));
  x = g.addVector(x, vec('v.patch_embd.bias'));
  x = rms(x, 'v.norm_embd');
  if (g.hasTensor('v.position_embd.weight')) {
    x = g.add(x, g.embedInterp(g.weight('v.position_embd.weight', [d, hp.gridSide * hp.gridSide]), hp.gridSide, hp.gridSide));
  }
  const hd = hp.headDim;
  const nh = hp.headCount;
  const rope: RopeParams = { heads: nh, headDim: hd, nRot: hd, mode: ROPE_VISION, sections: [hd / 4, hd / 4, 0] as [number, number, number], freqBase: hp.ropeTheta, freqScale: 1 };
  const ff = hp.feedForwardLength;
  // Each image is evaluated whole, so a layer's keys are not needed after it: all layers share the first layer's slot.
  const slot = 0;
  for (let l = 0; l < hp.blockCount; l++) {
    const b = `v.blk.${l}.`;
    const h = rms(x, `${b}ln1`);
    const qkvW = `${b}attn_qkv.weight`;
    const qkvB = `${b}attn_qkv.bias`;
    const hasBias = g.hasTensor(qkvB);
    const part = (k: number) => g.matmul(h, g.weightRows(qkvW, [d, 3 * d], k * d, d), hasBias ? g.weightRows(qkvB, [3 * d], k * d, d) : undefined);
    const q = g.rope(part(0), rope);
    const k = g.rope(part(1), rope);
    const v = part(2);
    const att = g.attention(q, k, v, { nHead: nh, nHeadKv: nh, headDim: hd, scale: 1 / Math.sqrt(hd), causal: false, ...(l > 0 ? { slot } : {}) });
    x = g.add(x, matmul(att, `${b}attn_out`, d, d));
    const h2 = rms(x, `${b}ln2`);
    const ffn = g.siluMul(matmul(h2, `${b}ffn_gate`, d, ff), matmul(h2, `${b}ffn_up`, d, ff));
    x = g.add(x, matmul(ffn, `${b}ffn_down`, ff, d));
  }
  if (g.hasTensor('v.post_ln.weight')) x = rms(x, 'v.post_ln');
  // The patch merger: a 2 x 2 convolution with stride 2 over each window = the window's patches, channel-major.
  const m2 = hp.merge * hp.merge;
  const merged = g.mergeRows(x, m2);
  const mw = hp.mergerWidth;
  let y = g.matmul(merged, g.weightAs('mm.patch_merger.weight', [hp.merge, hp.merge, d, mw], [m2 * d, mw]), g.weight('mm.patch_merger.bias', [mw]));
  y = matmul(y, 'mm.model.fc', mw, mw);
  y = g.layerNorm(y, g.weight('mm.post_norm.weight', [mw]), g.optionalWeight('mm.post_norm.bias', [mw]), 1e-5);
  y = g.geluErf(y);
  const pf = file.tensor('mm.up.weight')?.dims[1] ?? 0;
  if (!pf) throw new AglmError('GGUF_MISSING_TENSOR', "The projector file has no 'mm.up.weight'");
  y = g.siluMul(matmul(y, 'mm.gate', mw, pf), matmul(y, 'mm.up', mw, pf));
  y = matmul(y, 'mm.down', pf, hp.outputWidth);
  return g.build(y, y);
}
