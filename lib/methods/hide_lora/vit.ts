/**
 * HiDe-LoRA, ViT (class-incremental) track: the hierarchical decomposition of
 * HiDe-Prompt / HiDe-PET (Wang et al., NeurIPS 2023; thu-ml/HiDe-Prompt),
 * with a LoRA adapter as the task-specific parameters.
 *
 * ```
 * within-task prediction  task t trains its own adapter (the sites' live A, B; a fresh LoRA, or a
 *                         copy of task t−1's with `adapterInit: "previous"`) and the head, with the
 *                         trainer's logits cut to task t's classes; finished adapters stay frozen
 *                         in the sites' pools, and every forward pass runs ONE adapter alone
 * statistics (endTask t)  features of task t's training images only: per class a mean and a
 *                         covariance (full or diagonal, + ridge·I), of
 *                           · the task's own adapter (the features the head sees: WTP), and
 *                           · the TII model: `tiiFeatures` "first-task" (the first task's adapter,
 *                             the spec's "first-session-adapted model") or "pretrained" (no adapter)
 * task identity (TII)     at evaluation, from the TII model's feature of a test image: the
 *                         argmax of a linear TII head over the seen classes — HiDe's head
 *                         trained for `tiiEpochs` after each task on features sampled from the
 *                         classes' TII Gaussians (`tiiRule: "head"`, default; same SGD schedule
 *                         as the alignment), or the closed-form Gaussian discriminant of the TII
 *                         statistics (`"lda"`); or the nearest class mean. The class's
 *                         task names the adapter; the batch is grouped by predicted task
 * classifier alignment    after each task t ≥ 1 (HiDe: not after the first), the model's head is
 *                         trained on features sampled from the WTP Gaussians of every seen class
 *                         (logits cut to the seen classes): SGD with momentum and weight decay,
 *                         cosine-annealed over `alignEpochs`, fresh samples every epoch (ctx.rng)
 * ```
 *
 * Nothing reads a task before its turn: statistics come from `ctx.examples` of
 * the current task only, and the TII model is either the frozen pre-trained
 * backbone or the adapter of task 1 (trained on task 1 alone). This departs
 * from the released HiDe-LoRA scripts, whose TII "original model" is trained
 * on every task beforehand (thu-ml/HiDe-Prompt#1, a leak).
 *
 * Training adds HiDe-LoRA's contrastive term on the features (`orth_loss`,
 * {@link contrastiveTerm}; `contrastiveWeight`, default 0.01 as HiDe's CIFAR
 * config), with the stored class means of earlier tasks as prototypes.
 *
 * Left out (documented): label smoothing of the training loss (parsed but
 * unused by the released code), the multi-centroid statistics (the released
 * default; the papers describe one Gaussian per class, which is what is kept)
 * and `lora_momentum` (undefined for CIFAR in the released configs).
 *
 * This file holds the method (its options, the contrastive term, and the
 * {@link ContinualMethod} that composes the parts); the parts are beside it:
 * the per-task adapter pool (`adapters.ts`), the class statistics and their
 * sampling (`gaussians.ts`), task-identity inference (`tii.ts`) and classifier
 * alignment (`alignment.ts`).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { TaskAdapters } from "../../models/adapter_pool.ts";
import type { ImageClassifier } from "../../models/image_classifier.ts";
import { withActiveAdapter } from "../../models/lora.ts";
import type { ContinualMethod, MethodContext, MethodState } from "../method.ts";
import { taskLossOnly } from "../method.ts";
import { beginTaskAdapter, byGroup, featuresWith, taskAdapter } from "./adapters.ts";
import { alignHead, type AlignSchedule } from "./alignment.ts";
import { type ClassGaussian, classGaussians } from "./gaussians.ts";
import {
  buildTiiModel,
  inferTasks,
  ldaHead,
  type TiiClass,
  type TiiModel,
  trainTiiHead,
} from "./tii.ts";
import type { Scalar, Tensor1D, Tensor2D, Tensor4D } from "../../tensor.ts";

/** HiDe-LoRA (ViT) options. */
export interface HideLoraVitOptions {
  /**
   * The model whose features feed task-identity inference: `"first-task"` (the first task's
   * adapter, the spec's "first-session-adapted model"; default) or `"pretrained"` (the backbone
   * with no adapter).
   */
  tiiFeatures: "first-task" | "pretrained";
  /**
   * How a task is inferred from the TII feature: `"head"` (default; HiDe's: a linear head over
   * the seen classes trained by SGD on features sampled from the class Gaussians for
   * `tiiEpochs`, warm-started from the previous task's head, new classes at zero),
   * `"lda"` (the Gaussian discriminant with the classes' pooled covariance Σ in closed form:
   * w_c = Σ⁻¹μ_c, b_c = −½·μ_cᵀΣ⁻¹μ_c, what the sampled-feature head approximates; see
   * `ldaHead` in `tii.ts`) or `"nearest-mean"` (closest class mean). With the earlier default of 10
   * epochs the warm-started head underfitted the newest task's classes and routed most of its
   * images to older adapters (`exp:hide-lora-diagnosis`, docs/treelora.md).
   */
  tiiRule: "head" | "nearest-mean" | "lda";
  /** Class covariance: `"full"` (default; HiDe's `covariance`) or `"diagonal"` (`variance`). */
  covariance: "full" | "diagonal";
  /** Added to the covariance diagonal (default 1e-4, HiDe's). */
  covarianceRidge: number;
  /**
   * Task t's adapter starts as a copy of task t−1's trained adapter (`"previous"`, default:
   * HiDe-LoRA's released engine copies slot t−1 into slot t before training) or as a fresh
   * LoRA (`"fresh"`: A redrawn, B = 0).
   */
  adapterInit: "fresh" | "previous";
  /**
   * Weight of HiDe-LoRA's contrastive term on the features (the released `orth_loss`, `reg`;
   * default 0.01, its CIFAR value; 0 disables): with F the batch's features (task t's adapter)
   * and P the stored class means of the earlier tasks, M = [P; F], S = M·Mᵀ / temperature, the
   * term is the mean cross-entropy of each row of S against its own index.
   */
  contrastiveWeight: number;
  /** Temperature of the contrastive term (default 0.8, HiDe's). */
  contrastiveTemperature: number;
  /**
   * Epochs of classifier alignment, fresh samples each (default 30, HiDe's `crct_epochs`; 0
   * disables the alignment).
   */
  alignEpochs: number;
  /**
   * Epochs of the TII head (`tiiRule: "head"`), same schedule otherwise (default 30, as HiDe's
   * Gaussian-sampled head training; 0 leaves the head at zero, which sends every image to the
   * first class's task).
   */
  tiiEpochs: number;
  /** Features sampled per seen class per epoch, alignment and TII head (default 64). */
  alignSamplesPerClass: number;
  /** Mini-batch of sampled features (default 128). */
  alignBatchSize: number;
  /** SGD learning rate at the first epoch, cosine-annealed to 0 (default 0.01). */
  alignLr: number;
  /** SGD momentum (default 0.9, HiDe's). */
  alignMomentum: number;
  /** SGD weight decay (default 5e-4, HiDe's). */
  alignWeightDecay: number;
}

/**
 * The defaults. HiDe's alignment runs 30 epochs (`crct_epochs`) at lr 0.005 with 10·t batches of
 * 120 samples per epoch (about 110 samples per seen class); here 30 epochs of 64 samples per
 * class in batches of 128 at lr 0.01 (cosine), for the alignment and the TII head each.
 */
export const HIDE_LORA_VIT_DEFAULTS: Readonly<HideLoraVitOptions> = Object.freeze({
  tiiFeatures: "first-task",
  tiiRule: "head",
  covariance: "full",
  covarianceRidge: 1e-4,
  adapterInit: "previous",
  contrastiveWeight: 0.01,
  contrastiveTemperature: 0.8,
  alignEpochs: 30,
  tiiEpochs: 30,
  alignSamplesPerClass: 64,
  alignBatchSize: 128,
  alignLr: 0.01,
  alignMomentum: 0.9,
  alignWeightDecay: 5e-4,
});

const CHOICES: Record<string, readonly string[]> = {
  tiiFeatures: ["first-task", "pretrained"],
  tiiRule: ["head", "nearest-mean", "lda"],
  covariance: ["full", "diagonal"],
  adapterInit: ["fresh", "previous"],
};
const INTEGERS = new Set(["alignEpochs", "tiiEpochs", "alignSamplesPerClass", "alignBatchSize"]);

/**
 * Check `options` against {@link HIDE_LORA_VIT_DEFAULTS} and fill in the rest.
 *
 * @example
 * ```ts
 * import { resolveHideLoraVitOptions } from "./vit.ts";
 * resolveHideLoraVitOptions({ tiiFeatures: "pretrained" }).tiiRule; // "head"
 * ```
 */
export function resolveHideLoraVitOptions(options: Record<string, unknown>): HideLoraVitOptions {
  const defaults = HIDE_LORA_VIT_DEFAULTS as unknown as Record<string, unknown>;
  const unknown = Object.keys(options).filter((k) => !(k in defaults));
  if (unknown.length > 0) {
    throw new Error(
      `unknown hide-lora (ViT) option(s): ${unknown.join(", ")}; known: ${Object.keys(defaults)}`,
    );
  }
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    const choices = CHOICES[k];
    if (choices) {
      if (typeof v !== "string" || !choices.includes(v)) {
        throw new Error(`hide-lora: option ${k} must be one of ${choices.join(", ")}; got ${v}`);
      }
    } else if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new Error(`hide-lora: option ${k} must be a finite number ≥ 0, got ${v}`);
    } else if (INTEGERS.has(k) && !Number.isInteger(v)) {
      throw new Error(`hide-lora: option ${k} must be an integer, got ${v}`);
    }
    out[k] = v;
  }
  const o = out as unknown as HideLoraVitOptions;
  if (o.alignSamplesPerClass < 1 || o.alignBatchSize < 1) {
    throw new Error("hide-lora: alignSamplesPerClass and alignBatchSize must be ≥ 1");
  }
  if (!(o.alignLr > 0)) throw new Error("hide-lora: alignLr must be > 0");
  if (!(o.alignMomentum < 1)) throw new Error("hide-lora: alignMomentum must be in [0, 1)");
  if (!(o.contrastiveTemperature > 0)) {
    throw new Error("hide-lora: contrastiveTemperature must be > 0");
  }
  return o;
}

/**
 * HiDe-LoRA's contrastive term (the released `orth_loss`): M = [P; F] (prototypes, then the
 * batch's features), S = M·Mᵀ / `temperature`, and the mean over the rows of M of the
 * cross-entropy of softmax(S_i) against row i itself. It pushes each feature away from the
 * old prototypes and from the other features of the batch (labels unused). Without
 * prototypes (the first task) it runs on F alone. Differentiable in `features`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { contrastiveTerm } from "./vit.ts";
 * const c = contrastiveTerm(tf.tensor2d([[1, 0], [0, 1]]), null, { temperature: 1 });
 * // log(1 + e^-1) = 0.3133
 * ```
 */
export function contrastiveTerm(
  features: Tensor2D,
  prototypes: Tensor2D | null,
  options: { temperature: number },
): Scalar {
  return tf.tidy(() => {
    const m = prototypes === null ? features : tf.concat([prototypes, features], 0);
    const n = m.shape[0];
    const s = tf.div(tf.matMul(m, m, false, true), options.temperature);
    const own = tf.oneHot(tf.range(0, n, 1, "int32") as Tensor1D, n);
    return tf.losses.softmaxCrossEntropy(own, s) as Scalar;
  });
}

/** What the method keeps per seen class: its TII record, its head output and WTP statistics. */
interface ClassRecord extends TiiClass {
  /** Head output. */
  output: number;
  /** Statistics of the task's own adapter features (alignment). */
  wtp: ClassGaussian;
}

/** Images per forward pass when computing statistics. */
const STATS_BATCH = 200;

function requireFeatures(model: ImageClassifier): void {
  if (typeof model.features !== "function" || typeof model.headLogits !== "function") {
    throw new Error(
      "hide-lora (ViT) needs an image classifier that exposes features() and headLogits() " +
        "(vit_classifier does)",
    );
  }
}

/**
 * Create HiDe-LoRA for the ViT track. Options: {@link HideLoraVitOptions}.
 *
 * @example
 * ```ts
 * import { createHideLoraVit } from "./vit.ts";
 * const m = createHideLoraVit({ tiiFeatures: "pretrained" });
 * m.options().alignEpochs; // 30
 * ```
 */
export function createHideLoraVit(options: Record<string, unknown> = {}): ContinualMethod {
  const opts = resolveHideLoraVitOptions(options);
  const pool = new TaskAdapters();
  let classes: ClassRecord[] = [];
  let tiiCache: TiiModel | null = null;
  let summary: Record<string, unknown> = {};
  // The training step's features (set by forward, read by loss in the same tape).
  let stepFeatures: Tensor2D | null = null;
  const schedule: AlignSchedule = {
    epochs: opts.alignEpochs,
    samplesPerClass: opts.alignSamplesPerClass,
    batchSize: opts.alignBatchSize,
    lr: opts.alignLr,
    momentum: opts.alignMomentum,
    weightDecay: opts.alignWeightDecay,
  };

  // Task k's adapter: frozen in the pools as `task<k>`, or the live one for the newest task.
  const adapterOf = (task: number): string => taskAdapter(pool, task);
  const tiiAdapter = () => (opts.tiiFeatures === "pretrained" ? null : adapterOf(0));
  const seenTasks = () => new Set(classes.map((c) => c.task));
  const tiiModel = (): TiiModel => {
    if (tiiCache) return tiiCache;
    tiiCache = buildTiiModel(classes, {
      rule: opts.tiiRule === "nearest-mean" ? "nearest-mean" : "head",
    });
    return tiiCache;
  };

  async function collectStatistics(ctx: MethodContext, model: ImageClassifier): Promise<void> {
    const ex = ctx.examples;
    if (!ex?.images) {
      throw new Error(
        "hide-lora (ViT) needs ctx.examples with images() (the class-incremental trainer's)",
      );
    }
    const t = ctx.taskIndex;
    const n = ex.trainSize(t);
    const own = adapterOf(t);
    const tiiA = tiiAdapter();
    const shared = tiiA === own;
    const labels = new Int32Array(n);
    let dim = 0;
    let wtpData = new Float32Array(0);
    let tiiData = new Float32Array(0);
    for (let start = 0; start < n; start += STATS_BATCH) {
      const indices = Array.from({ length: Math.min(STATS_BATCH, n - start) }, (_, i) => start + i);
      const { x, y } = ex.images(ex.select(t, indices));
      let fw: Tensor2D | null = null;
      let ft: Tensor2D | null = null;
      try {
        fw = featuresWith(model, x, { adapter: own });
        ft = shared ? null : featuresWith(model, x, { adapter: tiiA });
        if (dim === 0) {
          dim = fw.shape[1];
          wtpData = new Float32Array(n * dim);
          tiiData = shared ? wtpData : new Float32Array(n * dim);
        }
        wtpData.set(await fw.data(), start * dim);
        if (ft) tiiData.set(await ft.data(), start * dim);
        labels.set(y, start);
      } finally {
        tf.dispose([x, ...(fw ? [fw] : []), ...(ft ? [ft] : [])]);
      }
    }
    const stat = { dim, covariance: opts.covariance, ridge: opts.covarianceRidge };
    const wtp = classGaussians(wtpData, labels, stat);
    const tii = shared ? wtp : classGaussians(tiiData, labels, stat);
    classes = classes.filter((r) => !wtp.has(r.output));
    for (const [output, g] of wtp) {
      classes.push({
        output,
        task: t,
        wtp: g,
        tii: tii.get(output)!,
        tiiWeight: new Float32Array(dim),
        tiiBias: 0,
      });
    }
    classes.sort((a, b) => a.output - b.output);
    tiiCache = null;
  }

  async function trainTii(ctx: MethodContext): Promise<number[]> {
    const losses = await trainTiiHead(classes, {
      schedule: { ...schedule, epochs: opts.tiiEpochs },
      rng: ctx.rng,
    });
    tiiCache = null;
    return losses;
  }

  return {
    name: "hide-lora",
    options: () => ({ ...opts }),
    async beginTask(ctx) {
      await beginTaskAdapter(pool, ctx, { adapterInit: opts.adapterInit });
    },
    trainableVariables: (ctx) => [
      ...ctx.model.loraSites().flatMap((s) => [s.a, s.b]),
      ...ctx.model.headVariables(),
    ],
    loss(ctx, taskLoss) {
      const f = stepFeatures;
      stepFeatures = null;
      if (f === null || opts.contrastiveWeight === 0) return taskLossOnly(taskLoss);
      const old = classes.filter((r) => r.task < ctx.taskIndex);
      const dim = f.shape[1];
      const prototypes = old.length === 0 ? null : tf.tensor2d(
        Float32Array.from(old.flatMap((r) => [...r.wtp.mean])),
        [old.length, dim],
      );
      const c = contrastiveTerm(f, prototypes, { temperature: opts.contrastiveTemperature });
      prototypes?.dispose();
      return {
        total: tf.add(taskLoss, tf.mul(c, opts.contrastiveWeight)) as Scalar,
        terms: { contrastive: c },
      };
    },
    forward(model, x, o) {
      const sites = model.loraSites();
      pool.attach(sites);
      const logitsWith = (adapter: string, xs: Tensor4D) =>
        withActiveAdapter(sites, () => model.logits(xs, o), { adapter });
      if (o.taskIndex !== undefined && o.training && opts.contrastiveWeight > 0) {
        // The training step: keep the features for the contrastive term (same ops as logits).
        requireFeatures(model);
        return withActiveAdapter(sites, () => {
          const f = model.features!(x, { training: true, seed: o.seed });
          stepFeatures = f;
          return model.headLogits!(f);
        }, { adapter: adapterOf(o.taskIndex) });
      }
      if (o.taskIndex !== undefined) return logitsWith(adapterOf(o.taskIndex), x);
      const tasks = seenTasks();
      // Before any statistics, or with one task seen, there is nothing to infer.
      if (tasks.size <= 1) {
        return logitsWith(adapterOf(tasks.size === 1 ? [...tasks][0] : pool.count), x);
      }
      requireFeatures(model);
      return tf.tidy(() => {
        const predicted = inferTasks(featuresWith(model, x, { adapter: tiiAdapter() }), tiiModel());
        return byGroup(x, {
          groups: predicted,
          run: (task, xs) => logitsWith(adapterOf(task), xs),
        });
      });
    },
    inferTask(model, x) {
      const tasks = seenTasks();
      if (tasks.size <= 1) {
        return new Int32Array(x.shape[0]).fill(tasks.size === 1 ? [...tasks][0] : pool.count);
      }
      requireFeatures(model);
      const f = featuresWith(model, x, { adapter: tiiAdapter() });
      try {
        return inferTasks(f, tiiModel());
      } finally {
        f.dispose();
      }
    },
    async endTask(ctx) {
      stepFeatures = null;
      const model = ctx.model as ImageClassifier;
      requireFeatures(model);
      await ctx.timer.timeAsync("hide_statistics", () => collectStatistics(ctx, model));
      let tiiLoss: number[] = [];
      if (opts.tiiRule === "head" && opts.tiiEpochs > 0 && seenTasks().size > 1) {
        tiiLoss = await ctx.timer.timeAsync("hide_tii_head", () => trainTii(ctx));
      }
      if (opts.tiiRule === "lda") {
        ctx.timer.time("hide_tii_head", () => {
          const head = ldaHead(classes.map((r) => r.tii));
          classes.forEach((r, k) => {
            r.tiiWeight = head.weights[k];
            r.tiiBias = head.biases[k];
          });
          tiiCache = null;
        });
      }
      let alignLoss: number[] = [];
      if (ctx.taskIndex > 0 && opts.alignEpochs > 0) {
        alignLoss = await ctx.timer.timeAsync("hide_alignment", () =>
          alignHead(
            { variables: model.headVariables(), logits: (f) => model.headLogits!(f) },
            {
              gaussians: classes.map((r) => r.wtp),
              columns: classes.map((r) => r.output),
              schedule,
              rng: ctx.rng,
            },
          ));
      }
      const ends = (l: number[]) => (l.length === 0 ? null : [l[0], l[l.length - 1]]);
      summary = {
        frozenAdapters: pool.count,
        classesWithStatistics: classes.length,
        tiiHeadLoss: ends(tiiLoss),
        alignmentLoss: ends(alignLoss),
      };
    },
    taskSummary: () => ({ ...summary }),
    state(): MethodState {
      const arrays = pool.arrays();
      const c = classes.length;
      if (c > 0) {
        const dim = classes[0].wtp.mean.length;
        const stack = (pick: (r: ClassRecord) => Float32Array, tail: number[]) => {
          const per = tail.reduce((a, b) => a * b, 1);
          const data = new Float32Array(c * per);
          classes.forEach((r, k) => data.set(pick(r), k * per));
          return { shape: [c, ...tail], data };
        };
        const covShape = (g: ClassGaussian) => (g.cov.length === dim ? [dim] : [dim, dim]);
        arrays["stats/wtp_mean"] = stack((r) => r.wtp.mean, [dim]);
        arrays["stats/wtp_cov"] = stack((r) => r.wtp.cov, covShape(classes[0].wtp));
        arrays["stats/tii_mean"] = stack((r) => r.tii.mean, [dim]);
        arrays["stats/tii_cov"] = stack((r) => r.tii.cov, covShape(classes[0].tii));
        arrays["stats/tii_weight"] = stack((r) => r.tiiWeight, [dim]);
        arrays["stats/tii_bias"] = {
          shape: [c],
          data: Float32Array.from(classes, (r) => r.tiiBias),
        };
      }
      return {
        json: {
          options: opts,
          frozenAdapters: pool.count,
          classes: classes.map((r) => ({
            output: r.output,
            task: r.task,
            count: r.wtp.count,
            tiiCount: r.tii.count,
          })),
        },
        arrays,
      };
    },
    restore(state) {
      pool.restore(state.arrays);
      tiiCache = null;
      const list = (state.json.classes ?? []) as {
        output: number;
        task: number;
        count: number;
        tiiCount: number;
      }[];
      if (list.length === 0) {
        classes = [];
        return;
      }
      const get = (key: string) => {
        const a = state.arrays[`stats/${key}`];
        if (!a || a.shape[0] !== list.length) {
          throw new Error(`hide-lora (ViT) state: stats/${key} is missing or has the wrong length`);
        }
        const per = a.data.length / list.length;
        return (k: number) => a.data.slice(k * per, (k + 1) * per);
      };
      const [wm, wc, tm, tc, tw, tb] = [
        "wtp_mean",
        "wtp_cov",
        "tii_mean",
        "tii_cov",
        "tii_weight",
        "tii_bias",
      ].map(get);
      classes = list.map((r, k) => ({
        output: r.output,
        task: r.task,
        wtp: { mean: wm(k), cov: wc(k), count: r.count },
        tii: { mean: tm(k), cov: tc(k), count: r.tiiCount },
        tiiWeight: tw(k),
        tiiBias: tb(k)[0],
      }));
    },
    dispose() {
      pool.dispose();
      classes = [];
      tiiCache = null;
    },
  };
}
