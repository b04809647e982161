import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import {
  createHideTreeLora,
  splitHideTreeLoraOptions,
} from "../../../lib/methods/treelora/hide_treelora.ts";
import { contrastiveTerm, createHideLoraVit } from "../../../lib/methods/hide_lora/vit.ts";
import type { ContinualMethod } from "../../../lib/methods/method.ts";
import { createMethod, methodNames } from "../../../lib/methods/registry.ts";
import { collectingRecorder, microModel, stream, trainMicro } from "../helpers.ts";

/** Train `method` on a 3-task micro stream (cpu) and return the rows and per-task summaries. */
async function run(method: ContinualMethod) {
  const s = stream(3);
  const model = microModel(s.classOrder.length, 0.1);
  const { recorder, rows, summaries } = collectingRecorder();
  await trainMicro(s, { model, method, recorder });
  return { rows, summaries, model };
}

Deno.test("hide-treelora options: registered for the ViT only, keys routed, levels per block by default", () => {
  assert(methodNames({ track: "vit" }).includes("hide-treelora"));
  assert(!methodNames({ track: "lm" }).includes("hide-treelora"));
  const split = splitHideTreeLoraOptions({ mode: "paper", lambda: 0.3, alignEpochs: 4 });
  assertEquals(split, {
    tree: { levels: "block", mode: "paper", lambda: 0.3 },
    hide: { alignEpochs: 4 },
  });
  const m = createMethod("hide-treelora", { options: { mode: "paper" }, track: "vit" });
  const o = m.options();
  assertEquals([o.levels, o.lambda, o.regularizer, o.adapterInit], [
    "block",
    0.1,
    "paper_l1",
    "previous",
  ]);
  assertThrows(() => createHideTreeLora({ nope: 1 }), Error, "unknown hide-treelora option");
});

Deno.test("contrastiveTerm: hand values with and without prototypes", async () => {
  await initBackend("cpu");
  // F = I₂, T = 1: S = I, each row's CE = log(e + 1) − 1 = log(1 + e⁻¹).
  const f = tf.tensor2d([[1, 0], [0, 1]]);
  const c0 = contrastiveTerm(f, null, { temperature: 1 });
  assertAlmostEquals((await c0.data())[0], Math.log(1 + Math.exp(-1)), 1e-6);
  // With one prototype p = (1, 1), T = 0.5: M = [p; f1; f2], S = 2·M·Mᵀ = [[4,2,2],[2,2,0],[2,0,2]].
  const p = tf.tensor2d([[1, 1]]);
  const c1 = contrastiveTerm(f, p, { temperature: 0.5 });
  const ce = (row: number[], i: number) =>
    Math.log(row.reduce((a, v) => a + Math.exp(v), 0)) - row[i];
  const want = (ce([4, 2, 2], 0) + ce([2, 2, 0], 1) + ce([2, 0, 2], 2)) / 3;
  assertAlmostEquals((await c1.data())[0], want, 1e-5);
  tf.dispose([f, c0, p, c1]);
});

Deno.test("hide-treelora with λ = 0 (no bandit draws): the accuracy matrix equals HiDe-LoRA's (cpu)", async () => {
  await initBackend("cpu");
  const hide = await run(createHideLoraVit({}));
  const tree = await run(createHideTreeLora({ lambda: 0 }));
  assertEquals(tree.rows.map((r) => r.cil), hide.rows.map((r) => r.cil));
  assertEquals(tree.rows.map((r) => r.tii), hide.rows.map((r) => r.tii));
  // The tree is still built: one level per adapted block (micro: 2 blocks, q and v each).
  const last = tree.summaries[2] as { selectionCounts: number[][]; signatureNorms: number[] };
  assertEquals(last.signatureNorms.length, 3);
  assertEquals(last.selectionCounts, [[0, 0], [0, 0]]);
  hide.model.dispose();
  tree.model.dispose();
});

Deno.test("hide-treelora, A − A_init signatures: each task's stored signature equals the hand mean over its steps", async () => {
  await initBackend("cpu");
  const inner = createHideTreeLora({ mode: "paper", signatureSource: "lora_a_movement" });
  const s = stream(3);
  const model = microModel(s.classOrder.length, 0.1);
  const sites = model.loraSites();
  let init: Float32Array[] = [];
  let sum: Float64Array | null = null;
  let steps = 0;
  const expected: Float64Array[] = [];
  const concat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };
  const summaries: Record<string, unknown>[] = [];
  const method: ContinualMethod = {
    ...inner,
    beginTask: async (ctx) => {
      await inner.beginTask(ctx);
      init = sites.map((x) => x.a.dataSync() as Float32Array);
      sum = null;
      steps = 0;
    },
    beforeStep: async (ctx) => {
      // Block by block: [A(k or q) ; A(v)] of block 0, then of block 1, each minus its value at task start.
      const now = concat(sites.map((x, i) => {
        const a = x.a.dataSync() as Float32Array;
        return a.map((v, j) => v - init[i][j]);
      }));
      sum ??= new Float64Array(now.length);
      for (let j = 0; j < now.length; j++) sum[j] += now[j];
      steps++;
      await inner.beforeStep!(ctx);
    },
    endTask: async (ctx) => {
      expected.push(sum!.map((v) => v / steps));
      await inner.endTask(ctx);
    },
  };
  const collected = collectingRecorder();
  await trainMicro(s, { model, method, recorder: collected.recorder });
  summaries.push(...collected.summaries);
  const state = inner.state().json.tree as { signaturesFloat64Base64: string[]; numSites: number };
  assertEquals(state.numSites, 2);
  const decode = (b64: string) => {
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new Float64Array(bytes.buffer);
  };
  const stored = state.signaturesFloat64Base64.map(decode);
  assertEquals(stored.length, 3);
  for (let t = 0; t < 3; t++) {
    assertEquals(stored[t].length, expected[t].length);
    // Each step's A − A_init is computed in float32 by both; means agree to float32 rounding.
    for (let j = 0; j < stored[t].length; j++) {
      assertAlmostEquals(stored[t][j], expected[t][j], 1e-7, `task ${t} value ${j}`);
    }
    assert(expected[t].some((v) => v !== 0), `task ${t}: the adapter did not move`);
  }
  // Selections: after tasks 2 and 3, every step chose one earlier task per level (2 levels).
  const counts = (summaries[2] as { selectionCounts: number[][] }).selectionCounts;
  assertEquals(counts.length, 2);
  for (let d = 0; d < 2; d++) assertEquals(counts[0][d] + counts[1][d], steps);
  inner.dispose();
  model.dispose();
});

Deno.test("hide-treelora, code mode with λ = 0.1: the bandit picks an earlier task per level every step; the regulariser is logged", async () => {
  await initBackend("cpu");
  const method = createHideTreeLora({});
  const s = stream(3);
  const model = microModel(s.classOrder.length, 0.1);
  const losses: { task: number; term: string; value: number }[] = [];
  const summaries: Record<string, unknown>[] = [];
  const collected = collectingRecorder();
  await trainMicro(s, { model, method, recorder: collected.recorder });
  summaries.push(...collected.summaries);
  losses.push(...collected.losses);
  // 2 epochs × 2 steps (16 images, batch 8) per task; 2 levels (blocks 0 and 1).
  const counts = (summaries[2] as { selectionCounts: number[][] }).selectionCounts;
  assertEquals(counts.map((c) => c.length), [2, 2]);
  for (let d = 0; d < 2; d++) assertEquals(counts[0][d] + counts[1][d], 4);
  assertEquals((summaries[0] as { selectionCounts: number[][] }).selectionCounts, []);
  const terms = new Set(losses.filter((l) => l.task > 0).map((l) => l.term));
  assert(terms.has("regularizer") && terms.has("contrastive"), [...terms].join(","));
  // Task 1 has no earlier task to pull toward: only the contrastive term.
  assert(!losses.some((l) => l.task === 0 && l.term === "regularizer"));
  method.dispose();
  model.dispose();
});
