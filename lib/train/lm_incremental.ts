/**
 * The continual instruction-tuning trainer of the language-model track: the
 * analogue of `class_incremental.ts` for TRACE-format tasks (spec §4.7–4.8).
 *
 * ```
 * for each task n:   beginTask
 *   for each epoch:    beginEpoch                         (epochs from a per-task list)
 *     for each batch:  beforeStep → [tape: masked LM loss → loss()] → clip → Adam → afterStep
 *   endTask
 *   generate on the test split of tasks 0..n, score with the caller's metric → recorder
 * ```
 *
 * The method hooks are called exactly as the class-incremental trainer calls
 * them, with the same {@link MethodContext}; the model a method sees is
 * {@link lmAdaptedModel} (the LoRA sites; no head variables, since the LM head
 * belongs to the frozen base). Batches follow spec §9.3 (`lm_batches.ts`),
 * the loss is the masked next-token cross-entropy (`lm_loss.ts`), the
 * optimiser is Adam with a constant learning rate (the released code: betas
 * 0.9/0.95, clip 1.0), and evaluation generates greedily by default
 * (`generate.ts`; the code samples at temperature 0.1, available through
 * `temperature`).
 *
 * A method's `inputPrefix` hook (prompt tuning) is applied everywhere the
 * model runs on task data: the training step (inside the tape, with the
 * trained task), `ctx.batch.logits`, `ctx.examples.loss` (the set's task)
 * and generation (the evaluated task's index, once per prompt batch).
 *
 * After each task the score row (one number 0–100 per task seen so far),
 * every prediction with its prompt, reference and per-example score, the
 * timings and the method's task summary go to the {@link LmRunRecorder} at
 * once, so a crash later loses nothing already computed.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { ContinualMethod, EvalPromptContext, MethodContext } from "../methods/method.ts";
import { type Decoder, lmAdaptedModel } from "../models/decoder.ts";
import { Rng } from "../random.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import type { LossRecord } from "./task_loop.ts";
import { generateTokens } from "./generate.ts";
import { type LmExample, trainingBatch } from "./lm_batches.ts";
import { IGNORE_INDEX, lmLoss, shiftLabels } from "./lm_loss.ts";
import type { Progress } from "./progress.ts";
import { epochsFor } from "./schedule.ts";
import { captureCheckpoint, restoreTrainer, type TrainerCheckpoint } from "./checkpoint.ts";
import { Timer } from "../methods/timer.ts";
import {
  type ExampleReadHook,
  lmExamples,
  type LmPrefixHook,
  trainingBatchPrefix,
} from "./example_access.ts";
import { stepsPerEpochFor, type TaskLoopConfig, trainTask } from "./task_loop.ts";
import type { Tensor2D } from "../tensor.ts";

/** One task of an instruction-tuning stream (a TRACE task). */
export interface LmTask {
  /** Task name (e.g. `C-STANCE`). */
  name: string;
  /** Training examples. */
  train: LmExample[];
  /** Test examples (generation + scoring). */
  test: LmExample[];
  /** Metric name handed to the scoring function (e.g. `accuracy`, `rouge-l`). */
  metric: string;
}

/**
 * Scores predictions against references with the named metric, as a number
 * in 0–100 (TRACE metrics, spec §9.5). `prompts` are the full prompts (SARI
 * uses them as sources). Called once per task on all its examples and once
 * per example (arrays of length 1) for the per-example scores.
 */
export type LmScoreFn = (
  metric: string,
  predictions: string[],
  references: string[],
  prompts: string[],
) => number | Promise<number>;

/**
 * Optimisation and evaluation schedule of an LM run: the shared loop's fields
 * ({@link TaskLoopConfig}; the released code: lr 1e-4 constant, betas 0.9/0.95, clip 1.0,
 * one optimiser for the whole stream) plus these.
 */
export interface LmTrainConfig extends TaskLoopConfig {
  /** Epochs per task: one number for every task, or a list (one per task; TreeLoRA 2,1,3,2,1,2,2,3). */
  epochs: number | number[];
  /** Training truncation length in tokens (prompt + answer + BOS/EOS; the code's 1536). */
  maxLength: number;
  /** Prompt tokens kept at inference, BOS included (the code's 1024). */
  maxPromptLength: number;
  /** New tokens generated per test prompt (the code's 512). */
  maxNewTokens: number;
  /** Prompts per generation batch. */
  evalBatchSize: number;
  /** 0 = greedy decoding; > 0 = sampling at this temperature (the code: 0.1). */
  temperature: number;
  /** Evaluate at most this many test examples per task (the first ones); null = all. */
  maxTestExamples: number | null;
}

/** Scores (0–100) of the tasks evaluated after one training round. */
export interface LmEvalRow {
  /** Score per evaluated task 0..n (R[i][n] in the spec's notation, i ≤ n). */
  scores: number[];
  /** Metric name per evaluated task. */
  metrics: string[];
  /** Test examples scored per evaluated task. */
  examples: number[];
}

/** One generated answer with its reference and score. */
export interface LmPrediction {
  /** The prompt as given (before truncation). */
  prompt: string;
  /** The decoded new tokens. */
  prediction: string;
  /** The reference answer. */
  reference: string;
  /** The example's score (0–100) under the task's metric. */
  score: number;
}

/** Per-task timing of the LM trainer, in seconds. */
export interface LmTaskTiming {
  /** Training wall-clock seconds (all epochs, hooks included). */
  trainSeconds: number;
  /** Evaluation wall-clock seconds (generation and scoring). */
  evalSeconds: number;
  /** Training examples processed (epochs × examples). */
  trainExamples: number;
  /** Real (non-pad) training tokens processed. */
  trainTokens: number;
  /** trainExamples / trainSeconds. */
  examplesPerSecond: number;
  /** trainTokens / trainSeconds. */
  tokensPerSecond: number;
  /** Tokens generated during evaluation (EOS excluded). */
  generatedTokens: number;
  /** Seconds per named component (trainer and method; `generate` and `score` for evaluation). */
  components: Record<string, number>;
}

/**
 * Where the LM trainer sends what it produces; shaped like the
 * class-incremental `RunRecorder`, plus the predictions. Implementations
 * write to disk at once.
 */
export interface LmRunRecorder {
  /** A finished task: the score row, the predictions per evaluated task, timings and summary. */
  taskDone(
    taskIndex: number,
    result: {
      row: LmEvalRow;
      predictions: LmPrediction[][];
      timing: LmTaskTiming;
      summary?: Record<string, unknown>;
    },
  ): Promise<void>;
  /** Loss records of the last logging window. */
  losses(records: LossRecord[]): Promise<void>;
  /** A checkpoint after a finished task (written before the next task starts). */
  checkpoint?(checkpoint: TrainerCheckpoint): Promise<void>;
}

/**
 * Generate answers for the test split of tasks 0..`throughTask` and score
 * them. Returns the score row, the predictions and the generated token count.
 *
 * @example
 * ```ts ignore
 * const { row, predictions } = await evaluateLmTasks(model, tasks, { throughTask: 1, tokenizer, score, config });
 * ```
 */
export async function evaluateLmTasks(
  model: Decoder,
  tasks: readonly LmTask[],
  options: {
    throughTask: number;
    tokenizer: Tokenizer;
    score: LmScoreFn;
    config: Pick<
      LmTrainConfig,
      "maxPromptLength" | "maxNewTokens" | "evalBatchSize" | "temperature" | "maxTestExamples"
    >;
    rng?: Rng;
    timer?: Timer;
    /**
     * Rewrites each test prompt before generation (a method's `evalPrompt`, FIX's
     * demonstrations). Scoring and the recorded predictions keep the original prompt.
     */
    prompt?: (prompt: string, at: EvalPromptContext) => string;
    /**
     * A method's `inputPrefix` hook: called once per prompt batch with the evaluated task's
     * index (`training` false) and the prompt rows (prompt mask = attention mask).
     */
    inputPrefix?: LmPrefixHook;
  },
): Promise<{ row: LmEvalRow; predictions: LmPrediction[][]; generatedTokens: number }> {
  const { config, tokenizer } = options;
  const timer = options.timer ?? new Timer();
  const row: LmEvalRow = { scores: [], metrics: [], examples: [] };
  const predictions: LmPrediction[][] = [];
  let generatedTokens = 0;
  for (let j = 0; j <= options.throughTask; j++) {
    const task = tasks[j];
    const test = config.maxTestExamples === null
      ? task.test
      : task.test.slice(0, config.maxTestExamples);
    const prompts = test.map((e) => e.prompt);
    const references = test.map((e) => e.answer);
    const rewrite = options.prompt;
    const inputs = rewrite
      ? prompts.map((p, i) =>
        rewrite(p, { taskIndex: j, taskName: task.name, exampleIndex: i, train: task.train })
      )
      : prompts;
    const hook = options.inputPrefix;
    const ids = await timer.timeAsync("generate", () =>
      generateTokens(model, inputs, {
        tokenizer,
        maxNewTokens: config.maxNewTokens,
        maxPromptLength: config.maxPromptLength,
        batchSize: config.evalBatchSize,
        temperature: config.temperature,
        rng: options.rng,
        inputPrefix: hook
          ? (ids, attentionMask) =>
            hook({ taskIndex: j, training: false }, {
              model,
              ids,
              attentionMask,
              promptMask: tf.cast(attentionMask, "float32") as Tensor2D,
            })
          : undefined,
      }));
    generatedTokens += ids.reduce((a, r) => a + r.length, 0);
    const texts = ids.map((r) => tokenizer.decode(r));
    const { total, each } = await timer.timeAsync("score", async () => {
      const total = test.length > 0
        ? await options.score(task.metric, texts, references, prompts)
        : 0;
      const each: number[] = [];
      for (let i = 0; i < test.length; i++) {
        each.push(await options.score(task.metric, [texts[i]], [references[i]], [prompts[i]]));
      }
      return { total, each };
    });
    row.scores.push(total);
    row.metrics.push(task.metric);
    row.examples.push(test.length);
    predictions.push(test.map((e, i) => ({
      prompt: e.prompt,
      prediction: texts[i],
      reference: e.answer,
      score: each[i],
    })));
  }
  return { row, predictions, generatedTokens };
}

/**
 * Train `method` on every task in order, evaluating every task seen so far after each.
 *
 * @example
 * ```ts ignore
 * await trainLmIncremental(tasks, { model, method, tokenizer, score, config, rngs, recorder });
 * ```
 */
export async function trainLmIncremental(
  tasks: readonly LmTask[],
  options: {
    model: Decoder;
    method: ContinualMethod;
    tokenizer: Tokenizer;
    score: LmScoreFn;
    config: LmTrainConfig;
    /**
     * `data` shuffles batches; `method` is handed to the method (and seeds
     * a separate dropout stream); `generation` draws tokens when sampling (required when
     * `temperature > 0`).
     */
    rngs: { data: Rng; method: Rng; generation?: Rng };
    recorder: LmRunRecorder;
    progress?: Progress;
    label?: string;
    /** Continue after the task of this checkpoint (resume): variables, optimiser, RNGs and method restored. */
    resume?: TrainerCheckpoint;
    /** Observes every read of stored examples through `ctx.examples` (tests). */
    onExampleRead?: ExampleReadHook;
  },
): Promise<void> {
  const { model, method, config, rngs, recorder, progress, tokenizer } = options;
  if (config.temperature > 0 && !rngs.generation) {
    throw new Error("trainLmIncremental: sampling (temperature > 0) needs rngs.generation");
  }
  if (model.config.vocabSize < tokenizer.vocabSize) {
    throw new Error(
      `trainLmIncremental: the tokenizer has ${tokenizer.vocabSize} ids, the model ${model.config.vocabSize}`,
    );
  }
  const adapted = lmAdaptedModel(model);
  const inputPrefix: LmPrefixHook | undefined = method.inputPrefix
    ? (at, rows) => method.inputPrefix!(at, rows)
    : undefined;
  const numTasks = tasks.length;
  const timer = new Timer();
  const label = options.label ?? method.name;
  let optimizer: tf.Optimizer | null = null;
  // Dropout seeds come from their own stream (split off `method` once), so the method's
  // draws do not depend on the number of steps.
  const dropoutRng = new Rng(rngs.method.seed());
  const startTask = options.resume ? options.resume.taskIndex + 1 : 0;
  if (options.resume) {
    optimizer = await restoreTrainer(adapted, {
      checkpoint: options.resume,
      rngs: {
        data: rngs.data,
        method: rngs.method,
        dropout: dropoutRng,
        generation: rngs.generation,
      },
      method,
      config,
      extra: method.checkpointVariables?.(adapted),
    });
  }
  const run = {
    start: performance.now(),
    done: 0,
    total: tasks.reduce((a, t, i) => a + epochsFor(config.epochs, i) * t.train.length, 0),
  };
  try {
    for (let ti = startTask; ti < numTasks; ti++) {
      const task = tasks[ti];
      const epochs = epochsFor(config.epochs, ti);
      // Joint (`replayAll`): batches from the union of the training sets of tasks 0..ti.
      const train = method.replayAll ? tasks.slice(0, ti + 1).flatMap((t) => t.train) : task.train;
      const ctx: MethodContext = {
        model: adapted,
        taskIndex: ti,
        numTasks,
        epoch: 0,
        epochs,
        step: 0,
        stepsPerEpoch: stepsPerEpochFor(train.length, config),
        rng: rngs.method,
        timer,
        examples: lmExamples(tasks, {
          currentTask: ti,
          model,
          tokenizer,
          maxLength: config.maxLength,
          onRead: options.onExampleRead,
          inputPrefix,
        }),
      };
      let trainTokens = 0;
      const trainedTask = await trainTask(ctx, {
        method,
        config,
        optimizer,
        indices: Int32Array.from({ length: train.length }, (_, i) => i),
        rngs: { data: rngs.data, dropout: dropoutRng },
        recorder,
        progress,
        label,
        run,
        track: {
          taskName: task.name,
          unit: "ex",
          batch: (idx) =>
            trainingBatch(Array.from(idx, (i) => train[i]), {
              tokenizer,
              maxLength: config.maxLength,
            }),
          view: (batch, idx) => ({
            size: idx.length,
            scoredPositions: Float32Array.from(
              shiftLabels(batch.labels, { batch: batch.shape[0], tokens: batch.shape[1] }),
              (y) => (y === IGNORE_INDEX ? 0 : 1),
            ),
            logits: () =>
              tf.tidy(() => {
                const ids = tf.tensor2d(batch.ids, batch.shape, "int32");
                const mask = tf.tensor2d(batch.mask, batch.shape, "int32");
                const prefix = trainingBatchPrefix(batch, {
                  hook: inputPrefix,
                  at: { taskIndex: ti, training: false },
                  model,
                  ids,
                  mask,
                });
                return model.logits(ids, { training: false, attentionMask: mask, prefix });
              }),
          }),
          taskLoss: (batch, seed) => {
            const ids = tf.tensor2d(batch.ids, batch.shape, "int32");
            const mask = tf.tensor2d(batch.mask, batch.shape, "int32");
            // Not inside a nested tidy: a method may keep tensors for its `loss()`.
            const prefix = trainingBatchPrefix(batch, {
              hook: inputPrefix,
              at: { taskIndex: ti, training: true },
              model,
              ids,
              mask,
            });
            const logits = model.logits(ids, {
              training: true,
              seed,
              attentionMask: mask,
              prefix,
            });
            return { taskLoss: lmLoss(logits, batch.labels), logits };
          },
          counted: (batch) => {
            trainTokens += batch.lengths.reduce((a, b) => a + b, 0);
          },
        },
      });
      optimizer = trainedTask.optimizer;
      const { trainSeconds, trainItems: trainExamples } = trainedTask;
      const components = timer.totals();
      const accounted = Object.values(components).reduce((a, b) => a + b, 0);
      components.other = Math.max(0, trainSeconds - accounted);
      const e0 = performance.now();
      const evalTimer = new Timer();
      const { row, predictions, generatedTokens } = await evaluateLmTasks(model, tasks, {
        throughTask: ti,
        tokenizer,
        score: options.score,
        config,
        rng: rngs.generation,
        timer: evalTimer,
        prompt: method.evalPrompt ? (p, at) => method.evalPrompt!(p, at) : undefined,
        inputPrefix,
      });
      const evalSeconds = (performance.now() - e0) / 1000;
      Object.assign(components, evalTimer.totals());
      // Summary, then checkpoint, then the rows and status that point at it (see the ViT trainer).
      const summary = method.taskSummary?.();
      if (recorder.checkpoint) {
        await recorder.checkpoint(
          await captureCheckpoint(adapted, {
            taskIndex: ti,
            optimizer: config.resetOptimizerPerTask ? null : optimizer,
            rngs: {
              data: rngs.data,
              method: rngs.method,
              dropout: dropoutRng,
              generation: rngs.generation,
            },
            method: method.state(),
            extra: method.checkpointVariables?.(adapted),
          }),
        );
      }
      await recorder.taskDone(ti, {
        row,
        predictions,
        timing: {
          trainSeconds,
          evalSeconds,
          trainExamples,
          trainTokens,
          examplesPerSecond: trainExamples / trainSeconds,
          tokensPerSecond: trainTokens / trainSeconds,
          generatedTokens,
          components,
        },
        summary,
      });
      const mean = row.scores.reduce((a, b) => a + b, 0) / row.scores.length;
      progress?.log(
        `[${label}] task ${ti + 1}/${numTasks} (${task.name}) done: mean score ${
          mean.toFixed(2)
        } (train ${trainSeconds.toFixed(1)} s, ${(trainTokens / trainSeconds).toFixed(0)} tok/s, ` +
          `eval ${evalSeconds.toFixed(1)} s, ${generatedTokens} tokens generated)`,
      );
    }
  } finally {
    optimizer?.dispose();
  }
}
