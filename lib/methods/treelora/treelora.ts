/**
 * TreeLoRA (Qian et al., ICML 2025) as one {@link ContinualMethod}.
 *
 * One LoRA adapter and the head are trained through all tasks (the released
 * code's single continued adapter). Around each step:
 *
 * ```
 * beforeStep  signature:  read the live LoRA-A values, add them to the task's accumulator
 *             search:     one arm pull per site (bandit over previous tasks, tree-biased)
 * loss        regularizer: L_task − R (code) or L_task + λ‖x − P‖₁ (paper), P = the chosen
 *                          tasks' stored signatures
 * afterStep   signature:  (paper mode, gradient signatures) add ∂L/∂A to the accumulator
 * endTask     tree_build: store the task's signature, rebuild the K-D tree over all tasks
 * ```
 *
 * Every behaviour switch is in {@link TreeLoraOptions} (options.ts); `mode`
 * picks the released code's quirks or the paper's equations as defaults.
 * The tree's depth order is the backbone's LoRA site order; one level is one
 * site, or one block's sites together (`levels: "block"`, levels.ts). With
 * `signatureSource: "lora_a_movement"` a step contributes A − A_init (A_init:
 * the values at `beginTask`), and the regulariser sees A − A_init too.
 *
 * TreeLoRA acts on the sites' live A, B only, so it composes with methods that
 * swap the live adapter per task (HiDe-LoRA, `hide_treelora.ts`): whatever
 * the live adapter is when `beginTask` runs is the adapter it guides.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { ContinualMethod, LossParts, MethodContext, MethodState } from "../method.ts";
import { taskLossOnly } from "../method.ts";
import { type ArmSelector, createArmSelector, pullArms } from "./bandit.ts";
import { buildTree, closestPair, insertTask, type KDNode, treeToJson } from "./kd_tree.ts";
import { resolveTreeLoraOptions, type TreeLoraOptions, type TreeLoraTrack } from "./options.ts";
import {
  codeRegularizer,
  linearizedSignature,
  paperL1Penalty,
  regularizerTau,
} from "./regularizer.ts";
import { levelTensors, levelValues, type TreeLevel, treeLevels } from "./levels.ts";
import { flattenSites, selectedRows, SignatureAccumulator } from "./signature.ts";
import type { Scalar, Tensor } from "../../tensor.ts";

/**
 * Create the TreeLoRA method. `options` are validated and completed by
 * {@link resolveTreeLoraOptions} for the track (ViT λ 0.1, LM λ 0.5).
 *
 * @example
 * ```ts
 * import { createTreeLora } from "./treelora.ts";
 * const code = createTreeLora({}, { track: "vit" });
 * const ablation = createTreeLora({ selection: "random" }, { track: "vit" }); // penalty + random search
 * ```
 */
export function createTreeLora(
  options: Record<string, unknown>,
  context: { track: TreeLoraTrack },
): ContinualMethod {
  const opts: TreeLoraOptions = resolveTreeLoraOptions(options, context);
  const useGradients = opts.signatureSource === "lora_a_grads";
  const useMovement = opts.signatureSource === "lora_a_movement";
  // As in the released code (reg = 0 ⇒ SeqLoRA): without an active penalty the search has no
  // effect on training, so it is skipped (no bandit draws, no search time).
  const penaltyActive = opts.regularizer !== "none" && opts.lambda > 0;
  // The tree's leaves: one stored signature per entry, and the tasks each entry stands for
  // (one task, or several after a budgeted merge). Arms of the bandit are entries.
  const stored: Float64Array[] = [];
  let groups: number[][] = [];
  // Entries present at the last full rebuild; later ones were inserted in order (replayable).
  let rebuiltWith = 0;
  let root: KDNode | null = null;
  const treeOptions = () => ({
    numSites,
    dim,
    split: opts.split,
    useDifferences: opts.useDifferences,
  });
  /** The tree over `stored`: rebuilt over the first `rebuiltWith` entries, the rest inserted. */
  function replayTree(): KDNode | null {
    if (stored.length === 0) return null;
    let r = buildTree(stored.slice(0, Math.max(1, rebuiltWith)), treeOptions());
    for (let k = Math.max(1, rebuiltWith); k < stored.length; k++) {
      r = insertTask(r, stored, { ...treeOptions(), task: k });
    }
    return r;
  }
  let acc: SignatureAccumulator | null = null;
  let selector: ArmSelector | null = null;
  let targets: Float32Array[] | null = null;
  // penaltyUpdate "separate": −∇(λ·ℓ_reg) at the step's w_t, applied after the optimiser step.
  let pendingUpdate: Tensor[] | null = null;
  const separate = opts.regularizer === "paper_l1" && opts.penaltyUpdate === "separate";
  let numSites = 0;
  let dim = 0;
  let levels: TreeLevel[] = [];
  // Per level, the A values at task start (lora_a_movement).
  let initial: Float32Array[] | null = null;
  let counts: number[][] = [];
  let digest = 0x811c9dc5;

  function sitesOf(ctx: MethodContext) {
    const sites = ctx.model.loraSites();
    if (sites.length === 0) throw new Error("treelora: the model has no LoRA sites");
    return sites;
  }

  /**
   * The paper's penalty λ·Σ_d ‖x_d − P_d‖₁ on the per-site A tensors `aVars` (levels built here):
   * x_d = the level's A (− A_init) for value signatures, or its linearised gradient estimate
   * (value: the running mean of this task's gradients; derivative in A: the identity).
   */
  function paperPenalty(aVars: readonly Tensor[], chosen: Float32Array[]): Scalar {
    const aLevels = levelTensors(aVars, levels, { initial });
    const estimate = useGradients ? acc!.runningMean() : null;
    const live = estimate === null
      ? aLevels
      : aLevels.map((a, d) => linearizedSignature(a, estimate.subarray(d * dim, (d + 1) * dim)));
    return paperL1Penalty(live, { targets: chosen, lambda: opts.lambda });
  }

  function windowSteps(ctx: MethodContext): number {
    return opts.resetPerEpoch ? ctx.stepsPerEpoch : ctx.stepsPerEpoch * ctx.epochs;
  }

  const method: ContinualMethod = {
    name: "treelora",
    options: () => ({ ...opts }),

    async beginTask(ctx) {
      const sites = sitesOf(ctx);
      levels = treeLevels(sites.map((s) => s.name), {
        levels: opts.levels,
        sizes: sites.map((s) => s.a.size),
      });
      numSites = levels.length;
      dim = levels[0].sites.reduce((a, i) => a + sites[i].a.size, 0);
      initial = useMovement
        ? levelValues(
          await Promise.all(sites.map((s) => s.a.data() as Promise<Float32Array>)),
          levels,
        ).map((v) => Float32Array.from(v))
        : null;
      acc = new SignatureAccumulator({
        numSites,
        dim,
        scale: opts.accumulatorScale,
        source: opts.signatureSource,
      });
      acc.reset(windowSteps(ctx));
      selector = createArmSelector(opts, { numSites });
      counts = Array.from({ length: stored.length }, () => new Array(numSites).fill(0));
      digest = 0x811c9dc5;
    },

    beginEpoch(ctx) {
      if (opts.resetPerEpoch && ctx.epoch > 0) {
        acc!.reset(ctx.stepsPerEpoch);
        selector?.reset();
      }
    },

    trainableVariables(ctx) {
      return [...sitesOf(ctx).flatMap((s) => [s.a, s.b]), ...ctx.model.headVariables()];
    },

    gradientVariables(ctx) {
      return useGradients ? sitesOf(ctx).map((s) => s.a) : [];
    },

    async beforeStep(ctx) {
      if (!useGradients) {
        const sites = sitesOf(ctx);
        const values = await ctx.timer.timeAsync(
          "signature",
          () => Promise.all(sites.map((s) => s.a.data() as Promise<Float32Array>)),
        );
        ctx.timer.time("signature", () => {
          const perLevel = levelValues(values, levels);
          const flat = flattenSites(levels.map((l, d) => ({
            name: l.name,
            values: initial === null ? perLevel[d] : minus(perLevel[d], initial[d]),
          })));
          acc!.add(flat.data);
        });
      }
      targets = null;
      if (!penaltyActive || ctx.taskIndex === 0 || selector === null || stored.length === 0) return;
      if (useGradients && acc!.added === 0) return;
      ctx.timer.time("search", () => {
        const current = useGradients ? acc!.runningMean() : acc!.value();
        const { selection } = pullArms(selector!, {
          t: ctx.step,
          T: ctx.stepsPerEpoch,
          stored,
          root,
          rng: ctx.rng,
          current,
        });
        selection.forEach((k, d) => {
          counts[k][d]++;
          digest = Math.imul(digest ^ (k + 1), 0x01000193) >>> 0;
        });
        targets = selectedRows(stored, selection, { dim });
      });
      if (separate && targets !== null) {
        const chosen = targets;
        const aVars = sitesOf(ctx).map((s) => s.a);
        tf.dispose(pendingUpdate ?? []);
        pendingUpdate = ctx.timer.time("regularizer", () =>
          tf.tidy(() => {
            const { grads } = tf.variableGrads(() => paperPenalty(aVars, chosen), aVars);
            return aVars.map((v) => tf.keep(grads[v.name]));
          }));
      }
    },

    loss(ctx, taskLoss, outputs): LossParts {
      if (targets === null || !penaltyActive) return taskLossOnly(taskLoss);
      const chosen = targets;
      return ctx.timer.time("regularizer", () => {
        if (opts.regularizer === "paper_l1") {
          if (separate) {
            // Logged, not differentiated: the update is applied outside the optimiser.
            const p = tf.tidy(() => paperPenalty(sitesOf(ctx).map((s) => s.a), chosen));
            return { total: taskLoss, terms: { regularizer: p } };
          }
          // On the trainer's tap, so afterStep gets the task loss's gradient without the penalty's.
          const tap = outputs?.tap;
          const aVars = sitesOf(ctx).map((s) => (tap ? tap("regularizer", s.a) : s.a));
          const p = paperPenalty(aVars, chosen);
          return { total: tf.add(taskLoss, p) as Scalar, terms: { regularizer: p } };
        }
        const aSites = levelTensors(sitesOf(ctx).map((s) => s.a), levels, { initial });
        if (opts.regularizer === "code_inner_product") {
          const tau = regularizerTau(ctx.step, ctx.stepsPerEpoch, opts);
          const r = codeRegularizer(aSites, {
            targets: chosen,
            taskLoss,
            tau,
            fixSign: opts.fixSign,
          });
          return { total: tf.sub(taskLoss, r) as Scalar, terms: { regularizer: r } };
        }
        throw new Error(`treelora: unknown regularizer ${opts.regularizer}`);
      });
    },

    afterStep(ctx, info) {
      if (pendingUpdate !== null) {
        const update = pendingUpdate;
        pendingUpdate = null;
        ctx.timer.time("regularizer", () => {
          sitesOf(ctx).forEach((s, i) => {
            tf.tidy(() => s.a.assign(tf.sub(s.a, update[i])));
          });
          tf.dispose(update);
        });
      }
      if (!useGradients) return;
      // The paper's ĝ is the task loss's gradient: the paper penalty is tapped (or applied
      // outside the optimiser), so taskGradients excludes it. The code regularizer is scaled by
      // the task loss itself, so no clean split exists: its runs keep the total's gradient.
      const grads = opts.regularizer === "paper_l1" ? info.taskGradients : info.gradients;
      if (!grads) throw new Error("treelora: gradient signatures need the trainer's A gradients");
      ctx.timer.time("signature", () => {
        const perLevel = levelValues(grads, levels);
        const flat = flattenSites(levels.map((l, d) => ({ name: l.name, values: perLevel[d] })));
        acc!.add(flat.data);
      });
    },

    endTask(ctx) {
      ctx.timer.time("tree_build", () => {
        stored.push(acc!.snapshot());
        groups.push([ctx.taskIndex]);
        const overBudget = opts.storageBudget > 0 && stored.length > opts.storageBudget;
        if (overBudget) {
          // Merge the two closest entries into their task-weighted mean (paper §3.3, App. A.3).
          const [i, j] = closestPair(stored);
          const wi = groups[i].length;
          const wj = groups[j].length;
          stored[i] = stored[i].map((x, n) => (wi * x + wj * stored[j][n]) / (wi + wj));
          groups[i] = [...groups[i], ...groups[j]].sort((a, b) => a - b);
          stored.splice(j, 1);
          groups.splice(j, 1);
        }
        if (opts.treeUpdate === "insert" && root !== null && !overBudget) {
          root = insertTask(root, stored, { ...treeOptions(), task: stored.length - 1 });
        } else {
          root = buildTree(stored, treeOptions());
          rebuiltWith = stored.length;
        }
      });
      targets = null;
    },

    taskSummary() {
      return {
        tree: root ? treeToJson(root) : null,
        selectionCounts: counts,
        selectionDigest: digest.toString(16).padStart(8, "0"),
        selectionDigestNote:
          "FNV-1a over the sequence of selected tasks (step by step, site by site)",
        selectionCountsNote:
          "selectionCounts[k][d]: steps of this task at which level d chose stored entry k " +
          "(the tasks of entry k: storedGroups[k]; one task each unless a storage budget merged some)",
        signatureNorms: stored.map((v) => v.reduce((a, x) => a + Math.abs(x), 0)),
        storedGroups: groups.map((g) => [...g]),
        storedGroupsNote:
          "the tasks each stored signature (tree leaf entry, bandit arm) stands for",
      };
    },

    state(): MethodState {
      // Signatures go into the JSON as base64 float64 so a restored run computes the same tree
      // and bandit statistics bit for bit.
      return {
        json: {
          options: opts,
          numSites,
          dim,
          tasks: stored.length,
          signaturesFloat64Base64: stored.map(float64ToBase64),
          groups,
          rebuiltWith,
        },
        arrays: {},
      };
    },

    restore(state) {
      const encoded = state.json.signaturesFloat64Base64;
      if (!Array.isArray(encoded)) {
        throw new Error("treelora state: signaturesFloat64Base64 missing");
      }
      numSites = Number(state.json.numSites);
      dim = Number(state.json.dim);
      stored.length = 0;
      encoded.forEach((e, i) => {
        const v = base64ToFloat64(String(e));
        if (v.length !== numSites * dim) {
          throw new Error(
            `treelora state: signature ${i} has ${v.length} values, expected ${numSites * dim}`,
          );
        }
        stored.push(v);
      });
      // Older states (before merging): one task per entry, always rebuilt.
      groups = Array.isArray(state.json.groups)
        ? (state.json.groups as number[][]).map((g) => [...g])
        : stored.map((_, k) => [k]);
      rebuiltWith = typeof state.json.rebuiltWith === "number"
        ? state.json.rebuiltWith
        : stored.length;
      root = replayTree();
    },

    dispose() {
      targets = null;
      tf.dispose(pendingUpdate ?? []);
      pendingUpdate = null;
    },
  };
  return method;
}

function minus(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] - b[i];
  return out;
}

function float64ToBase64(v: Float64Array): string {
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function base64ToFloat64(s: string): Float64Array {
  const binary = atob(s);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float64Array(bytes.buffer);
}
