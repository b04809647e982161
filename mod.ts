/**
 * treelora: a reproducible continual-learning harness on Deno and TensorFlow.js.
 *
 * The public API for a Deno script of your own: run an experiment spec on a
 * track (`runExperiment` with `VIT_TRACK` or `LM_TRACK`, or the shorthands
 * `runSplitCifar` / `runTrace`), build a method (`createMethod` from the
 * registry, or your own {@link ContinualMethod}; docs/how_to_add_a_method.md),
 * train it on a stream (`trainClassIncremental`, `trainLmIncremental`), and
 * read a run folder back (`readCsvRows` on its CSV files, `writeRunReport` to
 * re-render it, `runStaleness` to ask whether the code changed since).
 *
 * @example Run a spec: SeqLoRA and TreeLoRA on the default ViT stream, two seeds
 * ```ts ignore
 * import { runExperiment, VIT_TRACK } from "./mod.ts";
 * import { SPEC } from "./experiments/split_cifar.ts";
 * const spec = {
 *   ...structuredClone(SPEC),
 *   methods: [{ name: "seqlora" }, { name: "treelora", options: { lambda: 0.3 } }],
 *   seedList: [0, 1],
 * };
 * const { runDir } = await runExperiment(spec, VIT_TRACK);
 * ```
 *
 * @example Read a run folder: the final average accuracy of each method and seed
 * ```ts ignore
 * import { readCsvRows } from "./mod.ts";
 * const rows = await readCsvRows("results/split-cifar/default/metrics.csv");
 * const final = rows.filter((r) => r.metric === "acc_final");
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
export {
  type PretrainConfig,
  pretrainedBackbone,
  type PretrainImages,
} from "./lib/train/pretrain.ts";
export {
  linearProbe,
  type LinearProbeOptions,
  type LinearProbeResult,
  type ProbeSet,
} from "./lib/train/linear_probe.ts";
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
export type { FlagSpec, FlagValues } from "./lib/flags.ts";
export type {
  EvalPromptContext,
  LmPrefixAt,
  LmPrefixRows,
  StepBatch,
  StepOutputs,
  Track,
} from "./lib/methods/method.ts";
export type { GemProjection, GemQpOptions, QpSolution } from "./lib/methods/qp.ts";
export type { SeqLoraOptions } from "./lib/methods/seq_lora.ts";
export type { Timer } from "./lib/methods/timer.ts";
export type {
  AccumulatorScale,
  RegularizerKind,
  SelectionPolicy,
  SignatureSource,
  SplitRule,
  TreeLevels,
  TreeLoraMode,
  TreeLoraTrack,
} from "./lib/methods/treelora/options.ts";
export type { PoolAdapter } from "./lib/models/backbone.ts";
export type {
  DecoderFeatureOptions,
  DecoderForwardOptions,
  KvCache,
  MlpActivation,
} from "./lib/models/decoder.ts";
export type {
  HfDecoder,
  HfDecoderCheckpoint,
  ReadHfDecoderOptions,
} from "./lib/models/hf_decoder.ts";
export type { HfVit, HfVitCheckpoint, ReadHfVitOptions } from "./lib/models/hf_vit.ts";
export type { ImageClassifier } from "./lib/models/image_classifier.ts";
export type { LinearHead } from "./lib/models/linear_head.ts";
export type {
  AdapterHead,
  AdapterModel,
  LoadAdapterReport,
  SaveAdapterOptions,
} from "./lib/models/peft_adapter.ts";
export type { LoadedWeights, TensorData, TensorMap } from "./lib/models/safetensors.ts";
export type { LoraTarget, VitForwardOptions } from "./lib/models/vit.ts";
export type { BlasRequest, BlasStatus } from "./lib/native_blas.ts";
export type { MethodStyles } from "./lib/report/method_style.ts";
export type { RunReport } from "./lib/report/run_report.ts";
export type { PlotSpec } from "./lib/report/render.ts";
export { type GitRunner, runStaleness, type Staleness } from "./lib/report/staleness.ts";
export type { InitBackendOptions } from "./lib/run/backend.ts";
export type { RunKey, RunWriter } from "./lib/run/run_writer.ts";
export type { OutputSpec, StreamOrder } from "./lib/run/spec.ts";
export type { HfTokenizer, HfTokenizerOptions } from "./lib/text/hf_tokenizer.ts";
export type { CheckpointOwner, TrainerCheckpoint } from "./lib/train/checkpoint.ts";
export type { RunRecorder } from "./lib/train/class_incremental.ts";
export type { EvalRow } from "./lib/train/evaluate.ts";
export type { ExampleReadHook } from "./lib/train/example_access.ts";
export type {
  LmRunRecorder,
  LmScoreFn,
  LmTask,
  LmTrainConfig,
} from "./lib/train/lm_incremental.ts";
export type { LmPretrainConfig } from "./lib/train/lm_pretrain.ts";
export type { PretrainedBackbone } from "./lib/train/pretrain.ts";
export type { Progress } from "./lib/train/progress.ts";
export type { EpochSchedule } from "./lib/train/schedule.ts";
export type { TaskLoopConfig } from "./lib/train/task_loop.ts";
export type { ImagePreprocessing } from "./lib/models/hf_vit.ts";
export type { PromptedForwardOptions } from "./lib/models/image_classifier.ts";
export type { PeftLoraConfig } from "./lib/models/peft_adapter.ts";
export type { MemoryLimit } from "./lib/models/safetensors_index.ts";
export type { Row } from "./lib/report/tables.ts";
export type { NamedTensorData } from "./lib/train/checkpoint.ts";
export type { CurvePoint, TaskTiming } from "./lib/train/class_incremental.ts";
export type { LmExample } from "./lib/train/lm_batches.ts";
export type { LmEvalRow, LmPrediction, LmTaskTiming } from "./lib/train/lm_incremental.ts";
export type { PretrainReport } from "./lib/train/pretrain.ts";
export type { ProgressInfo } from "./lib/train/progress.ts";
export type { LossRecord } from "./lib/train/task_loop.ts";
export type {
  DataType,
  NamedTensorMap,
  Scalar,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  Variable,
} from "./lib/tensor.ts";
