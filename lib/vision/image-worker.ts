// The image worker: decoding (PNG, JPEG) and preprocessing (resize, normalise, hash) of an image take a few hundred
// milliseconds for a phone screenshot, so they run here, on a worker thread, never on the caller's event loop.
// Messages in: { id, input, limits, params }; out: { id, ok: true, image } (the pixels transferred) or
// { id, ok: false, code, message }.
import { parentPort } from 'node:worker_threads';
import { AglmError } from '../errors.js';
import { decodeImage, preprocessImage, type ImageInput, type ImageLimits, type PreprocessParams } from './image.js';

interface Job {
  id: number;
  input: ImageInput;
  limits: ImageLimits;
  params: PreprocessParams;
}

parentPort?.on('message', async (job: Job) => {
  try {
    const img = preprocessImage(await decodeImage(job.input, job.limits), job.params);
    parentPort!.postMessage({ id: job.id, ok: true, image: img }, [img.chw.buffer as ArrayBuffer]);
  } catch (e) {
    const code = e instanceof AglmError ? e.code : 'INVALID_IMAGE';
    parentPort!.postMessage({ id: job.id, ok: false, code, message: e instanceof Error ? e.message : String(e) });
  }
});
