// What an architecture file provides: hyper-parameters read from GGUF metadata and the graph built from them.
import type { GgufFile } from '../gguf/index.js';
import type { IrGraph } from '../graph/ir.js';

export interface ArchHyperParams {
  /** Context length the model was trained with (`<arch>.context_length`). */
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  vocabSize: number;
  [key: string]: number | string | boolean;
}

export interface ArchBuild {
  hparams: ArchHyperParams;
  graph: IrGraph;
}

export interface Architecture {
  /** `general.architecture` values this file handles. */
  names: string[];
  build(file: GgufFile): ArchBuild;
}
