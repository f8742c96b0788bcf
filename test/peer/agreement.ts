// How closely two engines' logits agree: max abs difference, relative RMS (all positions, and the first alone),
// max difference over the peer's RMS, and argmax agreement (required only where the peer's top-2 margin is clear);
// and our side of the comparison: every position's logits of a file from an empty context.
import { loadModel } from '../../lib/index.js';

/** Our logits of every position of `tokens`, evaluated from an empty context: [tokens.length * n_vocab]. */
export async function ourLogits(path: string, tokens: number[], threads: number): Promise<Float32Array> {
  await using model = await loadModel(path);
  await using ctx = model.createContext({ contextSize: 64, threads });
  return await ctx.evaluate(tokens, { logits: 'all' });
}
export interface Agreement {
  /** Relative RMS difference of the first position's logits alone (one token: no attention sums to reorder). */
  firstRelRms: number;
  maxAbs: number;
  relRms: number;
  relMax: number;
  argmaxAgree: number;
  argmaxRequired: number;
  argmaxRequiredAgree: number;
}

export function compareLogits(ours: Float32Array, peer: Float32Array, nVocab: number): Agreement {
  let maxAbs = 0, se = 0, sp = 0, agree = 0, required = 0, requiredAgree = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - peer[i]);
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : d;
    se += (ours[i] - peer[i]) ** 2;
    sp += peer[i] ** 2;
  }
  const rms = Math.sqrt(sp / peer.length);
  let fe = 0, fp = 0;
  for (let i = 0; i < nVocab; i++) {
    fe += (ours[i] - peer[i]) ** 2;
    fp += peer[i] ** 2;
  }
  const rows = ours.length / nVocab;
  for (let r = 0; r < rows; r++) {
    let a = 0, b = 0, second = -Infinity;
    const o = r * nVocab;
    for (let i = 1; i < nVocab; i++) {
      if (ours[o + i] > ours[o + a]) a = i;
      if (peer[o + i] > peer[o + b]) b = i;
    }
    for (let i = 0; i < nVocab; i++) if (i !== b && peer[o + i] > second) second = peer[o + i];
    if (a === b) agree++;
    if (peer[o + b] - second > 10 * maxAbs) {
      required++;
      if (a === b) requiredAgree++;
    }
  }
  return { firstRelRms: Math.sqrt(fe / fp), maxAbs, relRms: Math.sqrt(se / sp), relMax: maxAbs / rms, argmaxAgree: agree / rows, argmaxRequired: required, argmaxRequiredAgree: requiredAgree };
}
