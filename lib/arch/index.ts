// The architecture registry: `general.architecture` -> the file that builds its graph.
import { AglmError } from '../errors.js';
import type { GgufFile } from '../gguf/index.js';
import { bert } from './bert.js';
import { chatglm } from './chatglm.js';
import { glm4 } from './glm4.js';
import { llama } from './llama.js';
import { qwen2 } from './qwen2.js';
import type { ArchBuild, Architecture } from './types.js';

const ARCHITECTURES: Architecture[] = [llama, qwen2, chatglm, glm4, bert];

export function supportedArchitectures(): string[] {
  return ARCHITECTURES.flatMap((a) => a.names);
}

export function buildArchitecture(file: GgufFile): ArchBuild & { architecture: string } {
  const architecture = file.metadata.getString('general.architecture');
  const arch = ARCHITECTURES.find((a) => a.names.includes(architecture));
  if (!arch) {
    throw new AglmError('UNSUPPORTED_ARCH', `Architecture '${architecture}' is not supported yet (supported: ${supportedArchitectures().join(', ')})`);
  }
  return { architecture, ...arch.build(file) };
}

export type { ArchBuild, Architecture } from './types.js';
