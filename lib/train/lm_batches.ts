/**
 * Token batches of the language-model track, as the released TreeLoRA code
 * builds them (spec §9.3 training, §9.4 inference).
 *
 * Training (`trainingBatch`), per example:
 *
 * 1. tokenise `prompt + answer` as one string (no separator, no special
 *    tokens) and keep the last `maxLength` tokens (left truncation);
 * 2. append EOS if there is room, then prepend BOS if there is still room;
 * 3. labels are −100 except the last `len(tokenize(answer)) + 1` positions
 *    (the answer and EOS);
 * 4. left-pad every row to the batch maximum rounded up to a multiple of
 *    `padMultiple` (8): pad id, attention 0, label −100.
 *
 * Step 3 follows the code literally: when truncation left no room for EOS,
 * the labelled span still has `len(answer) + 1` tokens, so it reaches one
 * token into the prompt (and covers the whole row when the answer alone is
 * that long).
 *
 * Inference (`promptBatch`): BOS + prompt tokens, keeping the last
 * `maxPromptLength − 1` prompt tokens (BOS always stays), left-padded the
 * same way. Every row then ends at its last real token, where generation
 * continues.
 *
 * @module
 */

import type { Tokenizer } from "../text/tokenizer.ts";
import { IGNORE_INDEX } from "./lm_loss.ts";

/** One TRACE example: the prompt (instruction included) and the reference answer. */
export interface LmExample {
  /** Prompt text, with the task's instruction prefix. */
  prompt: string;
  /** Reference answer text. */
  answer: string;
}

/** A left-padded training batch, row-major [B, T]. */
export interface TrainingBatch {
  /** Token ids [B·T]. */
  ids: Int32Array;
  /** Labels [B·T]: the token id on the answer and EOS, −100 elsewhere. */
  labels: Int32Array;
  /** Attention mask [B·T]: 1 real token, 0 padding. */
  mask: Int32Array;
  /** [B, T]. */
  shape: [number, number];
  /** Real (non-pad) tokens per row. */
  lengths: number[];
}

/** A left-padded prompt batch, row-major [B, T]. */
export interface PromptBatch {
  /** Token ids [B·T]. */
  ids: Int32Array;
  /** Attention mask [B·T]: 1 real token, 0 padding. */
  mask: Int32Array;
  /** [B, T]. */
  shape: [number, number];
  /** Real (non-pad) tokens per row. */
  lengths: number[];
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

function checkLength(name: string, n: number, min: number): void {
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${n}`);
  }
}

function leftPad(
  rows: { ids: number[]; labels?: number[] }[],
  options: { padId: number; padMultiple: number },
): { ids: Int32Array; labels: Int32Array; mask: Int32Array; shape: [number, number] } {
  const longest = Math.max(0, ...rows.map((r) => r.ids.length));
  const t = roundUp(Math.max(1, longest), options.padMultiple);
  const b = rows.length;
  const ids = new Int32Array(b * t).fill(options.padId);
  const labels = new Int32Array(b * t).fill(IGNORE_INDEX);
  const mask = new Int32Array(b * t);
  rows.forEach((r, i) => {
    const start = i * t + (t - r.ids.length);
    ids.set(r.ids, start);
    if (r.labels) labels.set(r.labels, start);
    mask.fill(1, start, (i + 1) * t);
  });
  return { ids, labels, mask, shape: [b, t] };
}

/**
 * Tokenise examples for training (spec §9.3; see the module doc).
 *
 * @example
 * ```ts
 * import { trainingBatch } from "./lm_batches.ts";
 * const bytes = {
 *   name: "bytes", vocabSize: 259, bosId: 256, eosId: 257, padId: 258,
 *   encode: (s: string) => [...new TextEncoder().encode(s)],
 *   decode: (ids: readonly number[]) => new TextDecoder().decode(Uint8Array.from(ids.filter((i) => i < 256))),
 * };
 * const batch = trainingBatch([{ prompt: "1+1=", answer: "2" }], { tokenizer: bytes, maxLength: 16 });
 * // BOS "1+1=2" EOS, left-padded to 8:
 * // ids    [258, 256, 49, 43, 49, 61, 50, 257]
 * // labels [-100, -100, -100, -100, -100, -100, 50, 257]
 * ```
 */
export function trainingBatch(
  examples: readonly LmExample[],
  options: { tokenizer: Tokenizer; maxLength: number; padMultiple?: number },
): TrainingBatch {
  const { tokenizer: tok, maxLength } = options;
  const padMultiple = options.padMultiple ?? 8;
  checkLength("trainingBatch: maxLength", maxLength, 1);
  checkLength("trainingBatch: padMultiple", padMultiple, 1);
  if (examples.length === 0) throw new Error("trainingBatch: no examples");
  const rows = examples.map((ex) => {
    let ids = tok.encode(ex.prompt + ex.answer);
    if (ids.length > maxLength) ids = ids.slice(ids.length - maxLength);
    if (ids.length < maxLength) ids.push(tok.eosId);
    if (ids.length < maxLength) ids.unshift(tok.bosId);
    const labelled = Math.min(ids.length, tok.encode(ex.answer).length + 1);
    const labels = ids.map((id, i) => (i >= ids.length - labelled ? id : IGNORE_INDEX));
    return { ids, labels };
  });
  const padded = leftPad(rows, { padId: tok.padId, padMultiple });
  return { ...padded, lengths: rows.map((r) => r.ids.length) };
}

/**
 * Tokenise prompts for generation (spec §9.4): BOS + the last
 * `maxPromptLength − 1` prompt tokens, left-padded to the longest row rounded
 * up to a multiple of `padMultiple` (8).
 *
 * @example
 * ```ts
 * import { promptBatch } from "./lm_batches.ts";
 * const bytes = {
 *   name: "bytes", vocabSize: 259, bosId: 256, eosId: 257, padId: 258,
 *   encode: (s: string) => [...new TextEncoder().encode(s)],
 *   decode: (ids: readonly number[]) => new TextDecoder().decode(Uint8Array.from(ids.filter((i) => i < 256))),
 * };
 * const batch = promptBatch(["hi"], { tokenizer: bytes, maxPromptLength: 64 });
 * // ids [258, 258, 258, 258, 258, 256, 104, 105], mask [0, 0, 0, 0, 0, 1, 1, 1]
 * ```
 */
export function promptBatch(
  prompts: readonly string[],
  options: { tokenizer: Tokenizer; maxPromptLength: number; padMultiple?: number },
): PromptBatch {
  const { tokenizer: tok, maxPromptLength } = options;
  const padMultiple = options.padMultiple ?? 8;
  checkLength("promptBatch: maxPromptLength", maxPromptLength, 1);
  checkLength("promptBatch: padMultiple", padMultiple, 1);
  if (prompts.length === 0) throw new Error("promptBatch: no prompts");
  const rows = prompts.map((p) => {
    const ids = tok.encode(p);
    const keep = maxPromptLength - 1;
    return { ids: [tok.bosId, ...(keep > 0 ? ids.slice(Math.max(0, ids.length - keep)) : [])] };
  });
  const { ids, mask, shape } = leftPad(rows, { padId: tok.padId, padMultiple });
  return { ids, mask, shape, lengths: rows.map((r) => r.ids.length) };
}
