/**
 * treelora: a reproducible continual-learning harness on Deno and TensorFlow.js.
 *
 * The public API: experiments' building blocks (data, models, methods,
 * trainer, metrics, reports) and the experiment runners.
 *
 * @example
 * ```ts ignore
 * import { runSplitCifar } from "./mod.ts";
 * import { SPEC } from "./experiments/split_cifar.ts";
 * await runSplitCifar({ ...SPEC, methods: [{ name: "treelora" }] });
 * ```
 *
 * @module
 */

export { type BackendInfo, type BackendName, initBackend } from "./lib/run/backend.ts";
export {
  Rng,
  type RngState,
  type SeedConfig,
  type SeedStreams,
  seedStreams,
} from "./lib/random.ts";
export * from "./lib/data/mod.ts";
export * from "./lib/metrics/mod.ts";
export * from "./lib/report/mod.ts";
export type {
  ContinualMethod,
  ExampleAccess,
  ExampleSet,
  LossParts,
  MethodContext,
  MethodState,
  StepInfo,
} from "./lib/methods/method.ts";
export { gemDual, gemProject, solveBoundedQp } from "./lib/methods/qp.ts";
export {
  cosineSimilarity,
  type PrefixPrompt,
  type Prompts,
  topKIndices,
} from "./lib/models/prompt.ts";
export { createMethod, methodNames } from "./lib/methods/registry.ts";
export { createSeqLora } from "./lib/methods/seq_lora.ts";
export {
  createTreeLora,
  resolveTreeLoraOptions,
  type TreeLoraOptions,
} from "./lib/methods/treelora/mod.ts";
export type { AdaptedModel, LoraConfig, LoraSite } from "./lib/models/backbone.ts";
export { createVit, type Vit, VIT_PRESETS, type VitConfig } from "./lib/models/vit.ts";
export { createVitClassifier, type VitClassifier } from "./lib/models/vit_classifier.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  loadWeights,
  saveWeights,
} from "./lib/models/safetensors.ts";
export { trainClassIncremental, type TrainConfig } from "./lib/train/class_incremental.ts";
export { evaluateSeenTasks } from "./lib/train/evaluate.ts";
export { type PretrainConfig, pretrainedBackbone } from "./lib/train/pretrain.ts";
export { writeRunReport } from "./lib/report/run_report.ts";
export { type ExperimentResult, runExperiment } from "./lib/run/runner.ts";
export { applyFlags, experimentFlags, runCli } from "./lib/run/cli.ts";
export type { ExperimentSpec, MethodSpec } from "./lib/run/spec.ts";
export type { ExperimentTrack, PreparedTrack, TrackCell } from "./lib/run/track.ts";
export {
  runSplitCifar,
  type SplitCifarSpec,
  VIT_TRACK,
} from "./lib/tracks/vit_class_incremental.ts";
export { LM_TRACK, runTrace, type TraceSpec } from "./lib/tracks/lm_trace.ts";
export {
  createDecoder,
  type Decoder,
  DECODER_PRESETS,
  type DecoderConfig,
} from "./lib/models/decoder.ts";
export { loadHfVit, readHfVitCheckpoint } from "./lib/models/hf_vit.ts";
export { loadHfDecoder, readHfDecoderCheckpoint } from "./lib/models/hf_decoder.ts";
export { loadAdapter, saveAdapter } from "./lib/models/peft_adapter.ts";
export { trainLmIncremental } from "./lib/train/lm_incremental.ts";
export { ByteTokenizer } from "./lib/text/byte_tokenizer.ts";
export { loadHfTokenizer } from "./lib/text/hf_tokenizer.ts";
export type { Tokenizer } from "./lib/text/tokenizer.ts";
