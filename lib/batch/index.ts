// Batch jobs in OpenAI's Batch API format: runBatch (library), the file helpers and progress the CLI builds on.
export { runBatch, isFailedResult, BATCH_URLS } from './run-batch.js';
export type { BatchRequestLine, BatchResultLine, BatchLineError, BatchProgress, BatchOptions, BatchInput, BatchUrl } from './run-batch.js';
export { readLines, prepareOutput, countPendingLines, ResultWriter, type BatchOutputState } from './files.js';
export {
  BatchProgressReporter,
  PROGRESS_MODES,
  formatSummary,
  formatProgressLine,
  formatProgressBar,
  formatDuration,
  tokensPerSecond,
  type ProgressMode,
  type ProgressReporterOptions,
} from './progress.js';
