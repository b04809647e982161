import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import { imageBatch } from "../../../lib/data/batches.ts";
import { createHideLora } from "../../../lib/methods/hide_lora/hide_lora.ts";
import { createHideLoraVit, HIDE_LORA_VIT_DEFAULTS } from "../../../lib/methods/hide_lora/vit.ts";
import type { ContinualMethod } from "../../../lib/methods/method.ts";
import { LIVE_ADAPTER, withActiveAdapter } from "../../../lib/models/lora.ts";
import type { VitClassifier } from "../../../lib/models/vit_classifier.ts";
import { Rng } from "../../../lib/random.ts";
import { trainClassIncremental } from "../../../lib/train/class_incremental.ts";
import { CONFIG, microModel, silentRecorder, stream } from "../helpers.ts";

Deno.test("hide-lora (ViT) options: defaults recorded, bad values refused, factory dispatches on track", () => {
  const vit = createHideLora({}, { track: "vit" });
  assertEquals(vit.options(), { ...HIDE_LORA_VIT_DEFAULTS });
  assertEquals(vit.name, "hide-lora");
  assertEquals(createHideLora({}, { track: "lm" }).options().temperature, 0.8);
  assertThrows(() => createHideLoraVit({ tiiFeatures: "all-tasks" }), Error, "first-task");
  assertThrows(() => createHideLoraVit({ alignEpochs: 1.5 }), Error, "integer");
  assertThrows(() => createHideLoraVit({ lambda1: 1 }), Error, "unknown");
  assertThrows(() => createHideLoraVit({ alignMomentum: 1 }), Error, "alignMomentum");
});

/** All test images of the stream, normalised like the trainer's. */
function testImages(s: ReturnType<typeof stream>): tf.Tensor4D {
  const idx = Int32Array.from(s.tasks.flatMap((t) => [...t.test]));
  const batch = imageBatch(s.test, idx, {
    labelToOutput: s.labelToOutput,
    mean: CONFIG.mean,
    std: CONFIG.std,
  });
  return tf.tensor4d(batch.x, [idx.length, s.test.size, s.test.size, 3]);
}

async function adapterValues(model: VitClassifier, name: string): Promise<Float32Array[]> {
  return await Promise.all(
    model.loraSites().flatMap((s) => {
      const p = name === LIVE_ADAPTER ? s : s.pool!.find((q) => q.name === name)!;
      return [p.a.data(), p.b.data()];
    }),
  ) as Float32Array[];
}

const VARIANTS: [string, Record<string, unknown>, "cpu" | "wasm"][] = [
  ["defaults (first-task TII, head rule, full covariance)", {}, "cpu"],
  ["LDA rule", { tiiRule: "lda" }, "cpu"],
  [
    "pretrained TII, nearest mean, diagonal, adapter copied (wasm)",
    {
      tiiFeatures: "pretrained",
      tiiRule: "nearest-mean",
      covariance: "diagonal",
      adapterInit: "previous",
    },
    "wasm",
  ],
];

for (const [label, options, backend] of VARIANTS) {
  Deno.test(`hide-lora (ViT), ${label}: current-task reads only; old adapters frozen; no leaks; state round-trip`, async () => {
    await initBackend(backend);
    const s = stream(3);
    const model = microModel(s.classOrder.length, 0.1);
    const inner = createHideLoraVit(options);
    const sites = model.loraSites();
    let current = -1;
    const reads: { current: number; task: number; indices: readonly number[] }[] = [];
    const finals: Float32Array[][] = [];
    const tensorsAfterTask: number[] = [];
    const summaries: Record<string, unknown>[] = [];
    const method: ContinualMethod = {
      ...inner,
      beginTask: async (ctx) => {
        current = ctx.taskIndex;
        await inner.beginTask(ctx);
      },
      endTask: async (ctx) => {
        await inner.endTask(ctx);
        finals.push(await adapterValues(model, LIVE_ADAPTER));
        summaries.push(inner.taskSummary!());
        tensorsAfterTask.push(tf.memory().numTensors);
      },
    };
    const before = tf.memory().numTensors;
    await trainClassIncremental(s, {
      model,
      method,
      config: { ...CONFIG, epochs: 2 },
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: silentRecorder(),
      onExampleRead: (task, indices) => reads.push({ current, task, indices }),
    });

    // Every read is of the task being trained, and each task's whole training split is read.
    assert(reads.length > 0);
    for (const r of reads) assertEquals(r.task, r.current, "a read of another task");
    for (let t = 0; t < 3; t++) {
      const seen = new Set(reads.filter((r) => r.task === t).flatMap((r) => [...r.indices]));
      assertEquals(seen.size, s.tasks[t].train.length, `task ${t} positions read`);
    }

    // Finished adapters are frozen and bit-identical to their values at the end of their task.
    assertEquals(sites.map((x) => x.pool!.map((p) => p.name)), sites.map(() => ["task0", "task1"]));
    for (const t of [0, 1]) {
      assertEquals(await adapterValues(model, `task${t}`), finals[t], `task${t}`);
      assert(sites.every((x) => x.pool!.every((p) => !p.a.trainable && !p.b.trainable)));
    }
    // The live adapter after task 3 is a different adapter.
    assert(finals[2][0].some((v, i) => v !== finals[1][0][i]));

    // Tensors: the only growth from task to task is the frozen adapter (A and B per site).
    assertEquals(tensorsAfterTask[1] - tensorsAfterTask[0], 2 * sites.length);
    assertEquals(tensorsAfterTask[2] - tensorsAfterTask[1], 2 * sites.length);

    // Alignment ran after tasks 2 and 3 and lowered the loss on the sampled features.
    assertEquals(summaries[0].alignmentLoss, null);
    for (const t of [1, 2]) {
      const [first, last] = summaries[t].alignmentLoss as number[];
      assert(last < first, `task ${t + 1} alignment loss ${first} → ${last}`);
      assertEquals(summaries[t].classesWithStatistics, 4 * (t + 1));
    }

    // Training-time forward with a task id uses only that task's adapter.
    const x = testImages(s);
    const byId = inner.forward!(model, x, { training: false, taskIndex: 0 });
    const alone = withActiveAdapter(sites, () => model.logits(x, { training: false }), {
      adapter: "task0",
    });
    assertEquals(await byId.data(), await alone.data());
    // Evaluation: every row is the logits of one task's adapter alone, and TII uses more than one.
    const evalLogits = inner.forward!(model, x, { training: false });
    const perTask = await Promise.all(["task0", "task1", LIVE_ADAPTER].map(async (adapter) => {
      const l = withActiveAdapter(sites, () => model.logits(x, { training: false }), { adapter });
      const v = await l.data();
      l.dispose();
      return v;
    }));
    const got = await evalLogits.data();
    const k = s.classOrder.length;
    const used = new Set<number>();
    for (let i = 0; i < x.shape[0]; i++) {
      const row = got.subarray(i * k, (i + 1) * k);
      const match = perTask.findIndex((p) =>
        p.subarray(i * k, (i + 1) * k).every((v, j) => Math.abs(v - row[j]) < 1e-5)
      );
      assert(match >= 0, `row ${i} is no single adapter's logits`);
      used.add(match);
    }
    assert(used.size > 1, "TII sent every test image to the same task");

    // state() → JSON → restore() in a fresh method gives bit-identical evaluation logits.
    const state = inner.state();
    const json = JSON.parse(JSON.stringify(state.json));
    inner.dispose();
    assert(sites.every((x) => x.pool!.length === 0));
    const again = createHideLora(options, { track: "vit" });
    again.restore({ ...state, json });
    const restored = again.forward!(model, x, { training: false });
    assertEquals(await restored.data(), got);
    tf.dispose([x, byId, alone, evalLogits, restored]);
    again.dispose();
    assertEquals(tf.memory().numTensors, before);
    model.dispose();
  });
}

Deno.test("hide-lora (ViT): a model without features() is refused with a clear error", async () => {
  await initBackend("cpu");
  const s = stream(2);
  const inner = microModel(s.classOrder.length);
  const model = { ...inner, features: undefined, headLogits: undefined };
  await assertRejects(
    () =>
      trainClassIncremental(s, {
        model,
        method: createHideLoraVit(),
        config: { ...CONFIG, maxStepsPerEpoch: 1 },
        rngs: { data: new Rng(1), method: new Rng(2) },
        recorder: silentRecorder(),
      }),
    Error,
    "features()",
  );
  inner.dispose();
});
