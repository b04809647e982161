/**
 * What the trainer and the CL methods may know about a model.
 *
 * A backbone exposes named LoRA sites in a fixed order (that order is the
 * TreeLoRA tree's depth order), its frozen base weights, and a forward pass.
 * Methods never reach into model internals: they ask for sites.
 *
 * @module
 */

import type { Tensor2D, Variable } from "../tensor.ts";

/** The adapter's configuration, a plain record (PEFT style). */
export interface LoraConfig {
  /** Rank r. */
  rank: number;
  /** Alpha; the LoRA branch is scaled by alpha / rank. */
  alpha: number;
  /** Dropout probability on the LoRA branch input (training only). */
  dropout: number;
}

/** One adapted linear map y = W0·x + b + (alpha/r)·B·A·drop(x). */
export interface LoraSite {
  /** Stable name, e.g. `blocks.0.attn.q`. */
  name: string;
  /** Input width d_in. */
  dIn: number;
  /** Output width d_out. */
  dOut: number;
  /** Down-projection A, shape [r, d_in], initialised U(-1/sqrt(d_in), 1/sqrt(d_in)). */
  a: Variable;
  /** Up-projection B, shape [d_out, r], initialised to zeros. */
  b: Variable;
  /**
   * Further adapters on this site (the adapter pool, `adapter_pool.ts`), summed with
   * `a`/`b` in the forward pass. Absent or empty: a plain LoRA site.
   */
  pool?: PoolAdapter[];
  /**
   * When set, the forward pass calls it with the site's input rows x [N, d_in] (before
   * dropout, inside the pass's `tidy`: keep what you need). Used by InfLoRA.
   */
  recordInput?: (x: Tensor2D) => void;
}

/** One named adapter of a site's pool: ΔW = s·B·A with the site's scale s. */
export interface PoolAdapter {
  /** Name, unique within the site (e.g. `task0`). */
  name: string;
  /** Down-projection [r_i, d_in] (any rank r_i). */
  a: Variable;
  /** Up-projection [d_out, r_i]. */
  b: Variable;
}

/**
 * The part of a model a CL method may see: its LoRA sites in tree-depth order
 * and the variables of its task head (empty for a language model, whose
 * output layer is part of the frozen base).
 */
export interface AdaptedModel {
  /** LoRA sites in their fixed order (the TreeLoRA depth order). */
  loraSites(): LoraSite[];
  /** Trainable head variables (classifier weight and bias), possibly empty. */
  headVariables(): Variable[];
  /**
   * The frozen base weights (created with `trainable = false`), for methods that fine-tune
   * them (EWC/GEM "full fine-tuning"): such a method sets `trainable` on them itself.
   * Optional: models that do not expose them leave it out.
   */
  baseVariables?(): Variable[];
}
