// loadModel() and the Model: a parsed, validated GGUF file bound to a native backend, its tokenizer, and the
// contexts created from it. Disposing a model ends its contexts.
import { join } from 'node:path';
import { buildArchitecture, type ArchBuild } from '../arch/index.js';
import { AglmError, invalidArgument } from '../errors.js';
import { ggmlTensorBytes, readGguf, type GgufFile, type GgufMetadata } from '../gguf/index.js';
import { fromNative, nativeBinding, type NativeModel } from '../native.js';
import { packageRoot } from '../package-root.js';
import { Tokenizer } from '../tokenizer/index.js';
import { freemem } from 'node:os';
import { planModel, type ModelPlan, type PrecisionRequest } from '../backends/planner.js';
import { defaultThreadCount } from '../backends/cpu-count.js';
import { warnBackend } from '../backends/system-info.js';
import { PRECISIONS } from '../backends/weight-types.js';
import { checkObject, optBoolean, optInt, optOneOf, optSignal } from '../validate.js';
import { Context, type ContextOptions } from './context.js';
import { Sequence } from './sequence.js';
import { embedTexts, type EmbedInput, type EmbedOptions } from './embed.js';
import { complete, generate, type CompletionResult, type GenerateChunk, type GenerateOptions, type Prompt } from './generate.js';
import { VisionProjector, type EncodeImageOptions } from '../vision/encoder.js';
import type { ImageInput } from '../vision/image.js';
import type { ImageEmbedding } from '../vision/media.js';
import { checkTools } from '../chat/tools.js';
import { ChatSession, resolveChatTemplate, type ApplyChatTemplateOptions, type ChatMessage, type ChatSessionOptions, type ChatTemplate } from '../chat/index.js';

/** CPU kernel variant names; which of them a build has depends on its architecture (systemInfo() lists them). */
export const CPU_VARIANTS = ['ref', 'avx2', 'avx512', 'amx', 'neon'] as const;
export type CpuVariant = (typeof CPU_VARIANTS)[number];

export interface LoadModelOptions {
  /**
   * The backend to compute on: 'cpu' (built in) or the name of a backend module (aglm-backend-<name>.so beside the
   * addon or in OPEN_AUTOGLM_BACKEND_PATH). Default: the best usable one. A named backend that cannot be used fails with
   * BACKEND_UNAVAILABLE and its reason (it never falls back).
   */
  backend?: string;
  /** Force a CPU kernel variant (also settable with OPEN_AUTOGLM_CPU); default: the best this CPU supports. */
  cpuVariant?: CpuVariant;
  /**
   * With a GPU backend: how many of the model's layers it runs (the last ones, with the output layer); the others run
   * on the CPU and the core hands the activations from one to the other each step. Default: every layer when the
   * weights and a default context's KV cells fit in 90% of the device's free memory, else as many as fit. 0: all on
   * the CPU. Ignored on the CPU backend. model.backend.gpuLayers says what was chosen and why.
   */
  gpuLayers?: number;
  /**
   * With a GPU backend: bytes of its memory the model may use (weights, KV cells, activations), for the precision
   * planner and the gpuLayers choice. Default: 90% of the device's free memory (of its total where the driver does not
   * say what is free).
   */
  gpuMemory?: number;
  /**
   * Weight precision: 'auto' (default) keeps the file's precision when it fits in `memoryBudget` and otherwise
   * quantizes at load to the most precise type that fits; a type name converts every weight matrix to it.
   */
  precision?: PrecisionRequest;
  /** Bytes the model may use (weights, KV cache, activations). Default: 90% of the memory free now. */
  memoryBudget?: number;
  /** Load only the tokenizer and metadata (also from vocab-only files with no tensors); no weights, no contexts. */
  vocabOnly?: boolean;
  /**
   * A vision projector file (llama.cpp's `mmproj-*.gguf`; clip.projector_type glm4v: GLM-4.1V / GLM-4.5V) that lets
   * prompts and chat messages hold images.
   */
  projector?: string;
  signal?: AbortSignal;
}

export interface TokenizeOptions {
  /**
   * Add the model's special tokens, as llama.cpp's add_special: BOS/EOS/SEP as the tokenizer metadata says (BERT:
   * [CLS] first, [SEP] last). Default true. false: no special token at all.
   */
  addSpecial?: boolean;
  /**
   * Alias of addSpecial (llama_tokenize's former name for it); addSpecial wins when both are given. `addBos: true`
   * also puts a BOS first where the vocabulary would not add one.
   */
  addBos?: boolean;
  /**
   * Parse special-token text (e.g. '<s>') in the input as special tokens. Default false: such text stays plain text,
   * as untrusted input must.
   */
  special?: boolean;
}

export interface ModelBackendInfo {
  backend: string;
  backendReason: string;
  /** The kernel variant chosen and why. */
  description: string;
  /** Layers (attention blocks) of the model, and how many run on a GPU backend (the rest on the CPU). */
  layers?: number;
  gpuLayers?: number;
  /** Why that many layers run on the GPU (the gpuLayers option, or the device memory). */
  gpuLayersReason?: string;
}

/** The model shipped in the package: Karpathy's stories260K (TinyStories Llama, MIT); see models/SOURCES.md. */
export const DEFAULT_MODEL_PATH = join(packageRoot, 'models', 'stories260K.gguf');

export class Model {
  readonly path: string;
  readonly architecture: string;
  readonly hparams: ArchBuild['hparams'];
  readonly backend: ModelBackendInfo;
  /** Width of the hidden states `context.evaluate(tokens, { hidden })` returns (the embedding length); 0 if none. */
  readonly hiddenSize: number;
  /** The precision and context size chosen for this model, with the reasons. */
  readonly plan: ModelPlan;
  #file: GgufFile;
  /** True when loaded with `vocabOnly`: the tokenizer and metadata only. */
  readonly vocabOnly: boolean;
  #native: NativeModel | undefined;
  #disposed = false;
  #tokenizer: Tokenizer;
  #contexts = new Set<Context>();
  #chatTemplate: ChatTemplate | undefined;
  #vision: VisionProjector | undefined;

  /** @internal use loadModel() */
  constructor(
    path: string,
    file: GgufFile,
    tokenizer: Tokenizer,
    weights: { build: ArchBuild & { architecture: string }; native: NativeModel; plan: ModelPlan; vision?: VisionProjector; gpuLayersReason?: string } | undefined,
  ) {
    this.path = path;
    this.#vision = weights?.vision;
    this.#file = file;
    this.#tokenizer = tokenizer;
    this.vocabOnly = weights === undefined;
    if (weights) {
      this.plan = weights.plan;
      this.architecture = weights.build.architecture;
      this.hparams = weights.build.hparams;
      this.#native = weights.native;
      const d = weights.native.describe();
      this.backend = { backend: d.backend, backendReason: d.backendReason, description: d.description, layers: d.layers, gpuLayers: d.gpuLayers };
      if (d.backend !== 'cpu' || d.gpuLayers < d.layers) this.backend.gpuLayersReason = weights.gpuLayersReason || 'every layer on the backend';
      this.hiddenSize = d.nHidden;
      return;
    }
    const arch = file.metadata.optString('general.architecture') ?? 'unknown';
    this.architecture = arch;
    const ctx = file.metadata.optNumber(`${arch}.context_length`) ?? 0;
    this.hparams = { contextLength: ctx, embeddingLength: 0, blockCount: 0, vocabSize: tokenizer.vocabSize };
    this.backend = { backend: 'none', backendReason: 'vocabulary only', description: 'no weights loaded (vocabOnly)' };
    this.hiddenSize = 0;
    this.plan = {
      precision: 'mixed',
      filePrecision: 'none',
      quantizeOnLoad: false,
      weightBytes: 0,
      kvBytesPerToken: 0,
      contextSize: 0,
      memoryBudget: 0,
      reasons: ['vocabOnly: the tokenizer and metadata only'],
      conversions: [],
    };
  }

  get metadata(): GgufMetadata {
    return this.#file.metadata;
  }
  get vocabSize(): number {
    return this.hparams.vocabSize;
  }
  /** The context length the model was trained with. */
  get contextLength(): number {
    return this.hparams.contextLength;
  }
  get tokenizer(): Tokenizer {
    this.#checkNotDisposed();
    return this.#tokenizer;
  }
  get disposed(): boolean {
    return this.#disposed;
  }

  tokenize(text: string, options?: TokenizeOptions): Uint32Array {
    this.#checkNotDisposed();
    if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
    const o = checkObject<TokenizeOptions>('tokenize options', options);
    const addBos = optBoolean('addBos', o.addBos, true);
    const addSpecial = optBoolean('addSpecial', o.addSpecial, addBos);
    return this.#tokenizer.encode(text, {
      addSpecial,
      ...(o.addBos === true && o.addSpecial === undefined ? { addBos: true } : {}),
      special: optBoolean('special', o.special, false),
    });
  }

  detokenize(tokens: ArrayLike<number>, options?: { special?: boolean }): string {
    this.#checkNotDisposed();
    return this.#tokenizer.decode(tokens, options);
  }

  createContext(options?: ContextOptions): Context {
    this.#checkNotDisposed();
    this.#nativeModel();
    const ctx = new Context(
      {
        vocabSize: this.vocabSize,
        hiddenSize: this.hiddenSize,
        hasLogits: this.hparams.hasLogits !== false,
        causal: this.hparams.causal !== false,
        mrope: typeof this.hparams.ropeSections === 'string' && this.hparams.ropeSections !== '',
        contextLength: this.contextLength,
        defaultContextSize: this.plan.contextSize,
        model: this,
        nativeModel: () => this.#nativeModel(),
        contextEnded: (c) => this.#contexts.delete(c),
      },
      options,
    );
    this.#contexts.add(ctx);
    return ctx;
  }

  /**
   * One embedding per text or token-id array (a Float32Array of hiddenSize values): the hidden states after the final norm (bert: the
   * last layer's), pooled over the text's tokens ('mean', 'cls': the first token, 'last') and L2-normalised unless
   * `normalize: false`. Default pooling: the file's `<arch>.pooling_type` when it names one of those, else 'mean' for
   * encoders and 'last' for causal decoders. Each text is evaluated alone in a context of its own.
   */
  embed(texts: EmbedInput, options?: EmbedOptions): Promise<Float32Array[]> {
    this.#nativeModel();
    return embedTexts(this, texts, options);
  }

  /**
   * Streams generated text, chunk by chunk (whole UTF-8 characters only). The prompt: text, token ids, or content
   * parts with images ([{ type: 'image', image }, { type: 'text', text }]) for a model loaded with a projector.
   */
  generate(prompt: Prompt, options?: GenerateOptions): AsyncIterable<GenerateChunk> {
    this.#nativeModel();
    return generate(this, prompt, options);
  }

  complete(prompt: Prompt, options?: GenerateOptions): Promise<CompletionResult> {
    this.#nativeModel();
    return complete(this, prompt, options);
  }

  /**
   * The chat template: the file's tokenizer.chat_template, or the built-in one that fits the architecture and
   * vocabulary (GLM-4, ChatGLM3, Llama 2, Llama 3, ChatML); `reason` says which and why.
   */
  get chatTemplate(): ChatTemplate {
    this.#checkNotDisposed();
    this.#chatTemplate ??= resolveChatTemplate(this.metadata, this.architecture, this.#tokenizer);
    return this.#chatTemplate;
  }

  /** Renders messages with the chat template (or `template`, a Jinja source) as Hugging Face's apply_chat_template. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions & { template?: string }): string {
    const { template, ...rest } = checkObject<ApplyChatTemplateOptions & { template?: string }>('applyChatTemplate options', options);
    const t = template === undefined ? this.chatTemplate : resolveChatTemplate(this.metadata, this.architecture, this.tokenizer, template);
    return t.render(messages, rest);
  }

  /**
   * A conversation kept in a KV cache: each turn evaluates only what is new. It runs in `sequence` when given (a
   * sequence of a context with several, so chats share one pool of cells and are batched), else in a context of its own.
   */
  createChatSession(options?: ChatSessionOptions): ChatSession {
    const { systemPrompt, template, overflow, sequence, tools, ...contextOptions } = checkObject<ChatSessionOptions>('chat session options', options);
    if (tools !== undefined) checkTools(tools);
    const chat = template === undefined ? this.chatTemplate : resolveChatTemplate(this.metadata, this.architecture, this.tokenizer, template);
    if (sequence !== undefined) {
      if (!(sequence instanceof Sequence)) throw invalidArgument('sequence', 'a Sequence from context.createSequence()', sequence);
      if (sequence.disposed) throw new AglmError('DISPOSED', 'The sequence was disposed');
      const extra = Object.keys(contextOptions);
      if (extra.length > 0) throw invalidArgument(extra[0], 'no context option together with sequence', (contextOptions as Record<string, unknown>)[extra[0]]);
      return new ChatSession({ model: this, sequence, template: chat, tokenizer: this.#tokenizer }, { systemPrompt, overflow, tools });
    }
    const context = this.createContext(contextOptions);
    try {
      return new ChatSession({ model: this, sequence: context.defaultSequence, ownContext: context, template: chat, tokenizer: this.#tokenizer }, { systemPrompt, overflow, tools });
    } catch (e) {
      context.dispose();
      throw e;
    }
  }

  /** The vision projector (loadModel's `projector` option), or undefined. */
  get vision(): VisionProjector | undefined {
    return this.#vision;
  }

  /**
   * An image's rows for the text model: decoded (PNG, JPEG, raw pixels), resized and normalised as the projector's
   * preprocessor does, and encoded by the vision tower. Cached by the preprocessed pixels: the same image again costs
   * nothing, and prompts holding it share its KV cells. NO_PROJECTOR without a projector; INVALID_IMAGE for an image
   * that does not decode or is over the limits.
   */
  encodeImage(image: ImageInput, options?: EncodeImageOptions): Promise<ImageEmbedding> {
    this.#checkNotDisposed();
    if (!this.#vision) {
      return Promise.reject(new AglmError('NO_PROJECTOR', 'This model was loaded without a vision projector: loadModel(path, { projector: mmprojPath }) reads images'));
    }
    return this.#vision.encode(image, checkObject<EncodeImageOptions>('encodeImage options', options));
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const c of [...this.#contexts]) c.dispose();
    this.#vision?.dispose();
    this.#native?.dispose();
    this.#native = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #nativeModel(): NativeModel {
    this.#checkNotDisposed();
    if (!this.#native) throw new AglmError('INVALID_ARGUMENT', 'This model was loaded with vocabOnly: it has a tokenizer but no weights to compute with');
    return this.#native;
  }

  #checkNotDisposed(): void {
    if (this.#disposed) throw new AglmError('DISPOSED', 'The model was disposed');
  }
}

/** Loads a GGUF model; without a path, the default model shipped in the package. */
export async function loadModel(path?: string, options?: LoadModelOptions): Promise<Model> {
  const site = new Error();
  if (path !== undefined && (typeof path !== 'string' || path.length === 0)) throw invalidArgument('path', 'a file path string', path);
  const o = checkObject<LoadModelOptions>('loadModel options', options);
  const envVariant = process.env.OPEN_AUTOGLM_CPU || undefined;
  const variant = optOneOf('cpuVariant', o.cpuVariant, CPU_VARIANTS, (envVariant as CpuVariant | undefined) ?? ('' as CpuVariant));
  if (o.cpuVariant === undefined && envVariant !== undefined && !(CPU_VARIANTS as readonly string[]).includes(envVariant)) {
    throw invalidArgument('OPEN_AUTOGLM_CPU', `one of ${CPU_VARIANTS.join(', ')}`, envVariant);
  }
  const signal = optSignal('signal', o.signal);
  if (o.backend !== undefined && (typeof o.backend !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(o.backend))) {
    throw invalidArgument('backend', "a backend name such as 'cpu'", o.backend);
  }
  const precision = optOneOf('precision', o.precision, ['auto', ...PRECISIONS] as const, 'auto');
  const budget = o.memoryBudget === undefined ? Math.floor(freemem() * 0.9) : optInt('memoryBudget', o.memoryBudget, 1, Number.MAX_SAFE_INTEGER, 0);
  const file = path ?? DEFAULT_MODEL_PATH;
  const vocabOnly = optBoolean('vocabOnly', o.vocabOnly, false);
  const gguf = await readGguf(file, { signal });
  if (vocabOnly) return new Model(file, gguf, Tokenizer.fromGguf(gguf.metadata), undefined);
  const build = buildArchitecture(gguf);
  const tokenizer = Tokenizer.fromGguf(gguf.metadata);
  if (tokenizer.vocabSize !== build.hparams.vocabSize) {
    throw new AglmError('GGUF_SHAPE_MISMATCH', `The tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${build.hparams.vocabSize}`);
  }
  const planFor = (memoryBudget: number, budgetSource: string) =>
    planModel({
      file: gguf,
      graph: build.graph,
      trainContext: build.hparams.contextLength,
      precision,
      memoryBudget,
      budgetSource,
      kvBytesPerToken: build.graph.cache.reduce((n, c) => n + (c.k + c.v) * 4, 0),
    });
  const hostSource = o.memoryBudget === undefined ? '90% of the free memory' : 'the memoryBudget option';
  // A GPU backend computes from its own memory: the precision planner first fits the model there (quantizing at load
  // if 'auto' allows); when even that does not fit, the host budget decides and gpuLayers splits the layers.
  const gpuMemory = o.gpuMemory === undefined ? undefined : optInt('gpuMemory', o.gpuMemory, 1, Number.MAX_SAFE_INTEGER, 0);
  // The backends the registry knows, asked once per load (the device for planning, gpuLayers, fallback warnings).
  const backends = registryBackends();
  const target = targetDevice(backends, o.backend, gpuMemory);
  const device = o.memoryBudget === undefined && o.gpuLayers === undefined ? target : undefined;
  let plan: ModelPlan;
  if (device && device.bytes < budget) {
    try {
      plan = planFor(device.bytes, device.source);
    } catch (e) {
      if (!(e instanceof AglmError) || e.code !== 'OUT_OF_MEMORY') throw e;
      plan = planFor(budget, hostSource);
    }
  } else plan = planFor(budget, hostSource);
  const convert = new Map(plan.conversions.map((c) => [c.name, c.toType]));
  for (const w of build.graph.weights) w.to = convert.get(w.name);
  if (signal?.aborted) throw new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason });
  if (o.gpuLayers !== undefined && (typeof o.gpuLayers !== 'number' || !Number.isInteger(o.gpuLayers) || o.gpuLayers < 0)) {
    throw invalidArgument('gpuLayers', 'a whole number of layers from 0', o.gpuLayers);
  }
  const gpu = chooseGpuLayers(target, o.gpuLayers, gguf, plan, convert);
  const spec = {
    path: file,
    backend: o.backend,
    gpuLayers: gpu.layers,
    variant: variant || undefined,
    variantSource: o.cpuVariant !== undefined ? 'the cpuVariant option' : envVariant ? 'OPEN_AUTOGLM_CPU' : undefined,
    // Load-time conversion and repacking use the cores this process may use (affinity and cgroup quota).
    threads: defaultThreadCount(),
    graph: build.graph,
  };
  let native: NativeModel;
  try {
    if (o.backend === undefined) warnFailedModules(backends);
    native = await nativeBinding().Model.load(spec);
  } catch (e) {
    const err = fromNative(e, site);
    // A backend chosen by score (not by name) that cannot make the program: the CPU runs the model, and it is said.
    const chosen = o.backend === undefined ? backends.find((b) => b.state === 'ready')?.name : undefined;
    if (!chosen || chosen === 'cpu' || err.code === 'ABORTED' || err.code === 'INVALID_ARGUMENT' || err.code.startsWith('GGUF')) throw err;
    warnBackend(`open-autoglm: the ${chosen} backend could not run ${file} (${err.code}: ${err.message}); it runs on the CPU`);
    try {
      native = await nativeBinding().Model.load({ ...spec, backend: 'cpu', gpuLayers: undefined });
    } catch (e2) {
      throw fromNative(e2, site);
    }
  }
  let vision: VisionProjector | undefined;
  if (o.projector !== undefined) {
    if (typeof o.projector !== 'string' || o.projector.length === 0) {
      native.dispose();
      throw invalidArgument('projector', 'the path of a projector (mmproj) GGUF file', o.projector);
    }
    try {
      vision = await VisionProjector.load(o.projector, build.hparams.embeddingLength, {
        backend: o.backend,
        variant: variant || undefined,
        variantSource: o.cpuVariant !== undefined ? 'the cpuVariant option' : envVariant ? 'OPEN_AUTOGLM_CPU' : undefined,
        signal,
      });
    } catch (e) {
      native.dispose();
      throw e;
    }
  }
  if (signal?.aborted) {
    native.dispose();
    vision?.dispose();
    throw new AglmError('ABORTED', 'The operation was aborted', { cause: signal.reason });
  }
  return new Model(file, gguf, tokenizer, { build, native, plan, vision, gpuLayersReason: gpu.reason });
}

type BackendRecords = ReturnType<ReturnType<typeof nativeBinding>['systemInfo']>['backends'];

/** The registry's backends (every module found, with its state and devices); none when the addon cannot say. */
function registryBackends(): BackendRecords {
  try {
    return nativeBinding().systemInfo().backends;
  } catch {
    return [];
  }
}

/** The device of the backend a load will use, when that is a GPU backend: its name and 90% of its free (else total) memory. */
function targetDevice(backends: BackendRecords, backend: string | undefined, limit?: number): { name: string; bytes: number; source: string } | undefined {
  const record = backend ? backends.find((b) => b.name === backend) : backends.find((b) => b.state === 'ready');
  const d = record?.devices[0];
  if (!record || record.name === 'cpu' || record.state !== 'ready' || !d) return undefined;
  if (limit !== undefined) return { name: d.name, bytes: limit, source: `the gpuMemory option for ${d.name}` };
  const bytes = 0.9 * (d.memoryFree > 0 ? d.memoryFree : d.memoryTotal);
  return bytes > 0 ? { name: d.name, bytes: Math.floor(bytes), source: `90% of ${d.name}'s ${d.memoryFree > 0 ? 'free ' : ''}memory` } : undefined;
}

/** Backend modules that failed to load are reported (once each) when a load picks a backend by score. */
function warnFailedModules(backends: BackendRecords): void {
  for (const b of backends)
    if (b.state === 'failed') warnBackend(`open-autoglm: backend module ${b.path} failed to load (${b.reason}); not used`);
}

/**
 * gpuLayers for a load: the option as given, or, when the backend that will run the model has a GPU device, as many
 * of the last layers as fit in 90% of its free memory (total where the driver reports no free figure) with the output
 * and embedding tables and the KV cells of the default context; undefined leaves every layer on the backend.
 */
function chooseGpuLayers(
  device: { name: string; bytes: number } | undefined,
  asked: number | undefined,
  gguf: GgufFile,
  plan: ModelPlan,
  convert: Map<string, number>,
): { layers: number | undefined; reason: string } {
  if (asked !== undefined) return { layers: asked, reason: 'the gpuLayers option' };
  if (!device) return { layers: undefined, reason: '' };
  const available = device.bytes;
  const perLayer = new Map<number, number>();
  let rest = 0;
  for (const t of gguf.tensors) {
    const bytes = ggmlTensorBytes(convert.get(t.name) ?? t.type, t.dims);
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) perLayer.set(Number(m[1]), (perLayer.get(Number(m[1])) ?? 0) + bytes);
    else rest += bytes;
  }
  const n = perLayer.size;
  if (n === 0) return { layers: undefined, reason: '' };
  const kvPerLayer = (plan.kvBytesPerToken * plan.contextSize) / n;
  const layerBytes = [...perLayer.values()].reduce((a, b) => a + b, 0) / n + kvPerLayer;
  const fmt = (b: number) => (b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(2)} GiB` : `${(b / 1024 ** 2).toFixed(1)} MiB`);
  if (rest + n * layerBytes <= available) return { layers: undefined, reason: `the model (${fmt(rest + n * layerBytes)} with a ${plan.contextSize}-token context) fits in ${device.name}'s ${fmt(available)}` };
  const fit = Math.max(0, Math.min(n, Math.floor((available - rest) / layerBytes)));
  return { layers: fit, reason: `${fit} of ${n} layers (${fmt(layerBytes)} each with their KV cells) fit in ${device.name}'s ${fmt(available)} beside the output and embedding tables (${fmt(rest)})` };
}
