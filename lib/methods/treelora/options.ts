/**
 * TreeLoRA options. Every difference between the paper (Qian et al., ICML
 * 2025) and the released code (`ZinYY/TreeLoRA`) is a named switch, so that a
 * run records exactly which variant it used (spec §6, §7.1).
 *
 * Two modes fill the defaults:
 *
 * - `"code"` (default): the released LLM code, quirk for quirk (spec §4).
 * - `"paper"`: the method as the paper describes it (spec §3). Where the
 *   paper is ambiguous the choice is ours; each one is documented on its
 *   switch below.
 *
 * The ablations of the paper's Table 5 are one option away from either mode:
 *
 * - (i) no penalty, no LCB: `{ regularizer: "none", selection: "none" }`
 *   (TreeLoRA then trains like SeqLoRA, but still records signatures and
 *   builds the tree, so the tree can be inspected);
 * - (ii) penalty + random search: `{ selection: "random" }` (each site draws
 *   a uniformly random previous task every step).
 *
 * @module
 */

/** `"code"`: the released behaviour (default). `"paper"`: the paper's description. */
export type TreeLoraMode = "code" | "paper";

/**
 * What one step contributes to a task's signature.
 * `"lora_a_values"`: the values of the LoRA A matrices (code).
 * `"lora_a_grads"`: the gradients ∂L/∂A of the task loss (paper).
 * `"lora_a_movement"`: A − A_init, the A values minus their values when the task began (the
 * adapter's movement during the task; for per-task adapters, whose A values would otherwise
 * compare initialisations).
 */
export type SignatureSource = "lora_a_values" | "lora_a_grads" | "lora_a_movement";

/**
 * What one level of the K-D tree (one bandit arm set, one regulariser term) is.
 * `"site"`: one LoRA site (code: one level per adapted module).
 * `"block"`: the LoRA sites of one transformer block together, their A values concatenated in
 * site order (the paper's ViT "depth 5" = blocks 0–4 with k and v pooled).
 */
export type TreeLevels = "site" | "block";

/**
 * Factor of each step's contribution to the accumulator.
 * `"modules"`: M (the number of LoRA sites), the code's `insert_grad` bug.
 * `"one"`: 1, a plain mean.
 */
export type AccumulatorScale = "modules" | "one";

/**
 * How a K-D tree node splits its tasks.
 * `"dot_lower_median"`: score = dot product with the node mean, lower median,
 * score ≥ median goes left (code).
 * `"l1_lower_median"`: score = L1 distance to the node mean, lower median,
 * score ≤ median goes left (paper).
 */
export type SplitRule = "dot_lower_median" | "l1_lower_median";

/**
 * How each site picks a previous task every step.
 * `"code_softmax"`: the code's per-site softmax sampling (spec §4.5).
 * `"paper_lcb"`: deterministic descent of the hierarchical LCB of Eq. 2.
 * `"random"`: a uniformly random previous task per site (Table 5 (ii)).
 * `"none"`: no selection (Table 5 (i); needs `regularizer: "none"`).
 */
export type SelectionPolicy = "code_softmax" | "paper_lcb" | "random" | "none";

/**
 * The penalty added to the task loss.
 * `"code_inner_product"`: the code's normalised negative inner product (spec §4.6).
 * `"paper_l1"`: λ·‖g_cur − g_sel‖₁ of Eq. 3 (see `regularizer.ts`).
 * `"none"`: no penalty.
 */
export type RegularizerKind = "code_inner_product" | "paper_l1" | "none";

/** The experiment track; it sets the default λ. */
export type TreeLoraTrack = "vit" | "lm";

/** Every TreeLoRA switch, resolved (no field optional). */
export interface TreeLoraOptions {
  /** Which defaults were filled in: `"code"` (released code) or `"paper"`. */
  mode: TreeLoraMode;
  /**
   * Regularisation coefficient λ (the code's `--reg`). Default from the
   * track: 0.1 for the ViT track (paper Table 6), 0.5 for the LM track (all
   * released scripts). Must be finite and ≥ 0.
   */
  lambda: number;
  /**
   * What a step contributes to the signature. Code: `"lora_a_values"` (the
   * live A values). Paper: `"lora_a_grads"` (∂L_task/∂A; the trainer must
   * hand these to the method).
   */
  signatureSource: SignatureSource;
  /**
   * Accumulator factor. Code: `"modules"` (×M, the `insert_grad` bug; it
   * matters for the bandit and the tree-bias factor, not for the regulariser
   * or the tree splits). Paper: `"one"`. Must be `"one"` with `paper_l1`,
   * whose L1 distance is not scale-invariant.
   */
  accumulatorScale: AccumulatorScale;
  /** Tree split rule. Code: `"dot_lower_median"`. Paper: `"l1_lower_median"`. */
  split: SplitRule;
  /**
   * Build the tree on first differences of consecutive tasks' stored vectors
   * (V_i − V_{i−1}) instead of the vectors themselves. Code: true (A values
   * drift, differences approximate each task's update). Paper: false (the
   * signatures are already per-task mean gradients).
   */
  useDifferences: boolean;
  /** Arm selection policy. Code: `"code_softmax"`. Paper: `"paper_lcb"`. */
  selection: SelectionPolicy;
  /**
   * `code_softmax` only. false: `score += min(score)` (the code's shift bug).
   * true: `score -= min(score)` (the intended shift to ≥ 0). Code: false.
   * Paper: true.
   */
  fixShift: boolean;
  /**
   * `code_inner_product` only. false: normalise by `raw + 1e-5` (code; the
   * pull toward the selected task turns into a push away when Σ⟨A, P⟩ < 0).
   * true: a pull toward the selected task whatever the sign, i.e.
   * R = −raw/(|raw| + 1e-5)·L·τ. Code: false. Paper: true.
   */
  fixSign: boolean;
  /**
   * `code_softmax` only. false: score = mean distance + width, so distant or
   * unexplored tasks are favoured (the code's arithmetic). true: score =
   * −mean distance + width (an optimistic bound on similarity), so close
   * tasks are favoured and unexplored ones are still tried. Code: false.
   * Paper: true.
   */
  banditPrefersSimilar: boolean;
  /**
   * `code_softmax` only. Apply the code's root-level tree bias (a first draw
   * picks a root child, whose tasks' scores are multiplied by
   * min(child median, 1.5), or 1 for a leaf child). Code: true. Paper: false
   * (the paper's tree enters through the hierarchical LCB instead).
   */
  treeBias: boolean;
  /**
   * Reset the accumulator and the bandit statistics at every epoch start
   * (code: the stored task vector is then the last epoch's mean). false: they
   * span the whole task (reset at task start only). Code: true. Paper: false.
   */
  resetPerEpoch: boolean;
  /**
   * `code_inner_product` only: ramp the coefficient τ_t = λ·t/T from 0
   * within every epoch (code: true). false: τ = λ (paper).
   */
  rampPerEpoch: boolean;
  /** The penalty. Code: `"code_inner_product"`. Paper: `"paper_l1"`. */
  regularizer: RegularizerKind;
  /**
   * `paper_lcb` only: δ in Eq. 2, LCB(node) = max(min over children, own
   * bound − δ_d), with δ_d = δ·γᵈ at depth d (Assumption 1). Code: 0 (unused).
   * Paper: 1 with `deltaScale: "relative"` (δ_d in units of the spread of the
   * site's observed arm means, the quantity Assumption 1 bounds; our reading:
   * the paper gives only the form δγᵈ and says δ needs no tuning, and with
   * δ = 0 the descent can settle on a worse arm, see bandit.ts). Must be
   * finite and ≥ 0.
   */
  delta: number;
  /** `paper_lcb` only: γ ∈ (0, 1] of δ_d = δ·γᵈ. Code: 1. Paper: 0.5. */
  gamma: number;
  /**
   * `paper_lcb` only: `"absolute"` (δ as given; code) or `"relative"` (δ_d times the spread of
   * the site's observed arm means; paper).
   */
  deltaScale: "absolute" | "relative";
  /**
   * How the paper penalty enters the update. `"loss"`: added to the loss, so Adam rescales its
   * gradient with the task loss's (code; the harness's earlier behaviour). `"separate"`: Eq. 3
   * as printed, w ← w − α·S[∇ℓ] − λ·∇ℓ_reg: the optimiser sees the task loss only and −λ·∇ℓ_reg
   * (at the step's w) is applied to the LoRA A matrices after it (paper). `paper_l1` only.
   */
  penaltyUpdate: "loss" | "separate";
  /**
   * How the tree takes a finished task. `"rebuild"`: rebuild over all stored signatures (code).
   * `"insert"`: descend the existing tree by its nodes' split rule and rebuild only the leaf it
   * reaches (the paper's "insert it into the leaf of the nearest branch by depth-first search";
   * internal nodes keep their means and medians) (paper).
   */
  treeUpdate: "rebuild" | "insert";
  /**
   * Most stored signatures (tree entries, bandit arms) to keep; when a finished task makes one
   * more, the two closest (L1) are merged into their task-weighted mean and the tree is rebuilt
   * (the paper's budgeted merge). 0 = no budget (default in both modes: the paper ties the
   * budget to the machine's resources and gives no number). Integer ≥ 0; 1 is refused.
   */
  storageBudget: number;
  /**
   * What one tree level is: a LoRA site (`"site"`, both modes' default, the released code's one
   * level per module) or a transformer block's sites together (`"block"`).
   */
  levels: TreeLevels;
}

type Switches = Omit<TreeLoraOptions, "mode" | "lambda">;

const CODE_DEFAULTS: Readonly<Switches> = {
  signatureSource: "lora_a_values",
  accumulatorScale: "modules",
  split: "dot_lower_median",
  useDifferences: true,
  selection: "code_softmax",
  fixShift: false,
  fixSign: false,
  banditPrefersSimilar: false,
  treeBias: true,
  resetPerEpoch: true,
  rampPerEpoch: true,
  regularizer: "code_inner_product",
  delta: 0,
  gamma: 1,
  deltaScale: "absolute",
  penaltyUpdate: "loss",
  treeUpdate: "rebuild",
  storageBudget: 0,
  levels: "site",
};

const PAPER_DEFAULTS: Readonly<Switches> = {
  signatureSource: "lora_a_grads",
  accumulatorScale: "one",
  split: "l1_lower_median",
  useDifferences: false,
  selection: "paper_lcb",
  fixShift: true,
  fixSign: true,
  banditPrefersSimilar: true,
  treeBias: false,
  resetPerEpoch: false,
  rampPerEpoch: false,
  regularizer: "paper_l1",
  delta: 1,
  gamma: 0.5,
  deltaScale: "relative",
  penaltyUpdate: "separate",
  treeUpdate: "insert",
  storageBudget: 0,
  levels: "site",
};

const TRACK_LAMBDA: Readonly<Record<TreeLoraTrack, number>> = { vit: 0.1, lm: 0.5 };

const ENUMS: Readonly<Record<string, readonly string[]>> = {
  mode: ["code", "paper"],
  signatureSource: ["lora_a_values", "lora_a_grads", "lora_a_movement"],
  accumulatorScale: ["modules", "one"],
  split: ["dot_lower_median", "l1_lower_median"],
  selection: ["code_softmax", "paper_lcb", "random", "none"],
  regularizer: ["code_inner_product", "paper_l1", "none"],
  levels: ["site", "block"],
  deltaScale: ["absolute", "relative"],
  penaltyUpdate: ["loss", "separate"],
  treeUpdate: ["rebuild", "insert"],
};

const BOOLEANS: readonly string[] = [
  "useDifferences",
  "fixShift",
  "fixSign",
  "banditPrefersSimilar",
  "treeBias",
  "resetPerEpoch",
  "rampPerEpoch",
];

const NUMBERS: readonly string[] = ["lambda", "delta", "gamma", "storageBudget"];

/**
 * Names of every TreeLoRA option, in documentation order.
 *
 * @example
 * ```ts
 * import { TREELORA_OPTION_KEYS } from "./options.ts";
 * TREELORA_OPTION_KEYS.includes("fixShift"); // true
 * ```
 */
export const TREELORA_OPTION_KEYS: readonly (keyof TreeLoraOptions)[] = [
  "mode",
  "lambda",
  "signatureSource",
  "accumulatorScale",
  "split",
  "useDifferences",
  "selection",
  "fixShift",
  "fixSign",
  "banditPrefersSimilar",
  "treeBias",
  "resetPerEpoch",
  "rampPerEpoch",
  "regularizer",
  "delta",
  "gamma",
  "deltaScale",
  "penaltyUpdate",
  "treeUpdate",
  "storageBudget",
  "levels",
];

function checkValue(key: string, value: unknown): void {
  const allowed = ENUMS[key];
  if (allowed !== undefined) {
    if (typeof value !== "string" || !allowed.includes(value)) {
      throw new Error(
        `TreeLoRA option ${key}: expected one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${
          JSON.stringify(value)
        }`,
      );
    }
    return;
  }
  if (BOOLEANS.includes(key)) {
    if (typeof value !== "boolean") {
      throw new Error(`TreeLoRA option ${key}: expected a boolean, got ${JSON.stringify(value)}`);
    }
    return;
  }
  if (NUMBERS.includes(key)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new Error(
        `TreeLoRA option ${key}: expected a finite number >= 0, got ${JSON.stringify(value)}`,
      );
    }
  }
}

/**
 * Fill every TreeLoRA switch: first the mode's defaults (`mode` defaults to
 * `"code"`), then the track's λ (ViT 0.1, LM 0.5), then the given values.
 *
 * Throws on unknown keys (naming all of them), on values of the wrong type,
 * and on two incoherent combinations: a regulariser without a selection
 * policy (it needs a selected task), and `paper_l1` with
 * `accumulatorScale: "modules"` (the L1 target would be M times too large).
 *
 * @example
 * ```ts
 * import { resolveTreeLoraOptions } from "./options.ts";
 * const code = resolveTreeLoraOptions({}, { track: "lm" }); // released code, λ 0.5
 * const paper = resolveTreeLoraOptions({ mode: "paper" }, { track: "vit" }); // λ 0.1
 * // Table 5 (i) and (ii):
 * const plain = resolveTreeLoraOptions({ regularizer: "none", selection: "none" }, { track: "lm" });
 * const random = resolveTreeLoraOptions({ selection: "random" }, { track: "lm" });
 * ```
 */
export function resolveTreeLoraOptions(
  partial: Readonly<Record<string, unknown>>,
  context: { track: TreeLoraTrack },
): TreeLoraOptions {
  const known = TREELORA_OPTION_KEYS as readonly string[];
  const unknown = Object.keys(partial).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new Error(
      `unknown TreeLoRA option(s): ${unknown.join(", ")}; known options: ${known.join(", ")}`,
    );
  }
  const trackLambda = TRACK_LAMBDA[context.track];
  if (trackLambda === undefined) {
    throw new Error(`TreeLoRA: unknown track ${JSON.stringify(context.track)}; expected vit or lm`);
  }
  for (const [key, value] of Object.entries(partial)) {
    if (value !== undefined) checkValue(key, value);
  }
  const mode: TreeLoraMode = partial.mode === undefined ? "code" : partial.mode as TreeLoraMode;
  const defaults = mode === "code" ? CODE_DEFAULTS : PAPER_DEFAULTS;
  const resolved: TreeLoraOptions = { mode, lambda: trackLambda, ...defaults };
  const target = resolved as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(partial)) {
    if (value !== undefined) target[key] = value;
  }
  if (resolved.selection === "none" && resolved.regularizer !== "none") {
    throw new Error(
      `TreeLoRA: regularizer "${resolved.regularizer}" needs a selected task, but selection is ` +
        `"none"; use regularizer "none" too (Table 5 (i)) or pick a selection policy`,
    );
  }
  if (!Number.isInteger(resolved.storageBudget) || resolved.storageBudget === 1) {
    throw new Error(
      `TreeLoRA option storageBudget: expected 0 (no budget) or an integer ≥ 2, got ${resolved.storageBudget}`,
    );
  }
  if (!(resolved.gamma > 0 && resolved.gamma <= 1)) {
    throw new Error(`TreeLoRA option gamma: expected a number in (0, 1], got ${resolved.gamma}`);
  }
  // "separate" is paper mode's default for its own penalty; with another regulariser (the
  // Table 5 ablations, a code regulariser in paper mode) the default falls back to "loss".
  if (partial.penaltyUpdate === undefined && resolved.regularizer !== "paper_l1") {
    resolved.penaltyUpdate = "loss";
  }
  if (resolved.penaltyUpdate === "separate" && resolved.regularizer !== "paper_l1") {
    throw new Error(
      `TreeLoRA: penaltyUpdate "separate" applies the paper's −λ·∇ℓ_reg outside the optimiser and ` +
        `needs regularizer "paper_l1" (the code regulariser is scaled by the task loss itself)`,
    );
  }
  if (resolved.regularizer === "paper_l1" && resolved.accumulatorScale === "modules") {
    throw new Error(
      `TreeLoRA: regularizer "paper_l1" needs accumulatorScale "one" (an L1 distance to a ` +
        `target scaled by M is meaningless)`,
    );
  }
  return resolved;
}
