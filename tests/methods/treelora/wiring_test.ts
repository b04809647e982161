/**
 * TreeLoRA wired into the trainer (cpu): the stored signatures are the means of the task loss's
 * gradients the trainer hands over, the paper penalty's gradient is λ·sign(ĝ − P) where ĝ is the
 * running mean of this task's gradients and P the selected task's signature, and with
 * `penaltyUpdate: "separate"` exactly −λ·sign(ĝ − P) is applied to A after the optimiser.
 */
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import type { ContinualMethod, StepInfo } from "../../../lib/methods/method.ts";
import { createTreeLora } from "../../../lib/methods/treelora/treelora.ts";
import { Rng } from "../../../lib/random.ts";
import { trainClassIncremental } from "../../../lib/train/class_incremental.ts";
import {
  collectingRecorder,
  CONFIG,
  microModel,
  silentRecorder,
  stream,
  trainMicro,
} from "../helpers.ts";

function decode(b64: string): Float64Array {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float64Array(bytes.buffer);
}

const LAMBDA = 0.1;

for (const penaltyUpdate of ["loss", "separate"] as const) {
  Deno.test(`treelora paper mode in the trainer (penaltyUpdate ${penaltyUpdate}): signatures = mean task gradients; the penalty acts as λ·sign(ĝ − P)`, async () => {
    await initBackend("cpu");
    const s = stream(2);
    const model = microModel(s.classOrder.length, 0);
    const inner = createTreeLora({ mode: "paper", penaltyUpdate, lambda: LAMBDA }, {
      track: "vit",
    });
    const sites = model.loraSites();
    // Per task: the flattened task-loss gradients of every step (site order = level order).
    const recorded: Float64Array[][] = [[], []];
    let stored0: Float64Array | null = null;
    let checkedPenalty = 0;
    let checkedUpdate = 0;
    const flat = (parts: ArrayLike<number>[]) =>
      Float64Array.from(parts.flatMap((p) => [...Array.from(p)]));
    const method: ContinualMethod = {
      ...inner,
      afterStep: async (ctx, info: StepInfo) => {
        const task = flat(info.taskGradients!);
        const total = flat(info.gradients!);
        const before = recorded[ctx.taskIndex];
        const penaltyOn = ctx.taskIndex === 1 && before.length > 0;
        let expected: Float64Array | null = null;
        if (penaltyOn) {
          // ĝ: the running mean of this task's earlier steps' task gradients; P: task 1's signature.
          const est = new Float64Array(task.length);
          for (const g of before) for (let i = 0; i < g.length; i++) est[i] += g[i] / before.length;
          expected = est.map((e, i) => LAMBDA * (e - stored0![i] > 0 ? 1 : -1));
        }
        const aAfterOptimiser = flat(sites.map((x) => x.a.dataSync()));
        await inner.afterStep!(ctx, info);
        const aAfter = flat(sites.map((x) => x.a.dataSync()));
        if (penaltyUpdate === "loss") {
          // The penalty is in the loss: the total's gradient exceeds the task's by λ·sign(ĝ − P).
          for (let i = 0; i < task.length; i += 7) {
            assertAlmostEquals(total[i] - task[i], expected ? expected[i] : 0, 1e-6);
          }
          if (expected) checkedPenalty++;
          assertEquals(aAfter, aAfterOptimiser);
        } else {
          // Outside the optimiser: the loss is the task loss, then A moves by exactly −λ·sign(ĝ − P).
          assertEquals(total, task);
          for (let i = 0; i < aAfter.length; i += 7) {
            assertAlmostEquals(aAfter[i] - aAfterOptimiser[i], expected ? -expected[i] : 0, 1e-6);
          }
          if (expected) checkedUpdate++;
        }
        before.push(task);
      },
      endTask: async (ctx) => {
        await inner.endTask(ctx);
        const state = inner.state().json as { signaturesFloat64Base64: string[] };
        const sig = decode(state.signaturesFloat64Base64[ctx.taskIndex]);
        const steps = recorded[ctx.taskIndex];
        for (let i = 0; i < sig.length; i += 5) {
          const mean = steps.reduce((a, g) => a + g[i], 0) / steps.length;
          assertAlmostEquals(sig[i], mean, 1e-7, `task ${ctx.taskIndex} signature value ${i}`);
        }
        if (ctx.taskIndex === 0) stored0 = sig;
      },
    };
    await trainClassIncremental(s, {
      model,
      method,
      config: { ...CONFIG, epochs: 3 },
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: silentRecorder(),
    });
    assertEquals(recorded.map((r) => r.length), [6, 6]);
    assert(penaltyUpdate === "loss" ? checkedPenalty === 5 : checkedUpdate === 5);
    inner.dispose();
    model.dispose();
  });
}

Deno.test("treelora storageBudget 2: after task 3 the two closest signatures are merged into their mean (same training otherwise)", async () => {
  await initBackend("cpu");
  const finalState = async (storageBudget: number) => {
    const s = stream(3);
    const model = microModel(s.classOrder.length, 0);
    const method = createTreeLora({ mode: "paper", storageBudget }, { track: "vit" });
    const { recorder, summaries } = collectingRecorder();
    await trainMicro(s, { model, method, recorder });
    const json = method.state().json as { signaturesFloat64Base64: string[]; groups: number[][] };
    method.dispose();
    model.dispose();
    return { signatures: json.signaturesFloat64Base64.map(decode), json, summaries };
  };
  const full = await finalState(0);
  const merged = await finalState(2);
  assertEquals(full.signatures.length, 3);
  assertEquals(merged.signatures.length, 2);
  // The closest pair by hand (L1), and their mean.
  const [a, b, c] = full.signatures;
  const l1 = (x: Float64Array, y: Float64Array) => x.reduce((t, v, i) => t + Math.abs(v - y[i]), 0);
  const pairs: [number, number, number][] = [[0, 1, l1(a, b)], [0, 2, l1(a, c)], [1, 2, l1(b, c)]];
  pairs.sort((p, q) => p[2] - q[2]);
  const [i, j] = pairs[0];
  const other = [0, 1, 2].find((k) => k !== i && k !== j)!;
  const expectedGroups = [[i, j], [other]].sort((p, q) => p[0] - q[0]);
  assertEquals(merged.json.groups, expectedGroups);
  const mergedAt = merged.json.groups.findIndex((g) => g.length === 2);
  const mean = full.signatures[i].map((v, n) => (v + full.signatures[j][n]) / 2);
  for (let n = 0; n < mean.length; n += 3) {
    assertAlmostEquals(merged.signatures[mergedAt][n], mean[n], 1e-12);
  }
  assertEquals(merged.signatures[1 - mergedAt], full.signatures[other]);
  assertEquals((merged.summaries[2] as { storedGroups: number[][] }).storedGroups, expectedGroups);
  // A restored state rebuilds the same tree (replay of rebuild + inserts).
  const again = createTreeLora({ mode: "paper", storageBudget: 2 }, { track: "vit" });
  again.restore({ json: JSON.parse(JSON.stringify(merged.json)), arrays: {} });
  assertEquals(again.taskSummary!().tree, (merged.summaries[2] as { tree: unknown }).tree);
});
