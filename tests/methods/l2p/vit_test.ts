import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import { createL2p } from "../../../lib/methods/l2p/vit.ts";
import type { ContinualMethod, MethodState } from "../../../lib/methods/method.ts";
import type { VitClassifier } from "../../../lib/models/vit_classifier.ts";
import { Rng } from "../../../lib/random.ts";
import { type LossRecord, trainClassIncremental } from "../../../lib/train/class_incremental.ts";
import {
  changed,
  CONFIG,
  context,
  frozenValues,
  images,
  microModel,
  silentRecorder,
  stream,
} from "../helpers.ts";

/** Run the method on the 2-task micro stream; return the method state after each beginTask and task. */
async function train(model: VitClassifier, method: ContinualMethod, losses: LossRecord[] = []) {
  const begun: MethodState[] = [];
  const ended: MethodState[] = [];
  const wrapped: ContinualMethod = {
    ...method,
    beginTask: async (ctx) => {
      await method.beginTask(ctx);
      begun.push(method.state());
    },
  };
  const recorder = {
    ...silentRecorder(losses),
    checkpoint: (c: { method: MethodState }) => {
      ended.push(c.method);
      return Promise.resolve();
    },
  };
  await trainClassIncremental(stream(), {
    model,
    method: wrapped,
    config: CONFIG,
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder,
  });
  return { begun, ended };
}

Deno.test("l2p: options, defaults and the LM track refused", () => {
  assertEquals(createL2p({}, { track: "vit" }).options(), {
    poolSize: 30,
    promptLength: 5,
    topK: 5,
    pullWeight: 0.1,
    batchwise: true,
    pool: "prompts",
  });
  assertThrows(() => createL2p({}, { track: "lm" }), Error, "not built on the lm track");
  assertThrows(() => createL2p({ size: 3 }), Error, "unknown L2P option");
  assertThrows(() => createL2p({ topK: 31 }), Error, "topK 31 > poolSize 30");
});

Deno.test("l2p: each sample gets the prompts of its N nearest keys (hand-made keys)", async () => {
  await initBackend("cpu");
  const model = microModel(4);
  const x = images(2, 1);
  const q = model.queryFeatures!(x);
  const [q0, q1] = [q.slice([0, 0], [1, 32]), q.slice([1, 0], [1, 32])].map((t) =>
    t.dataSync() as Float32Array
  );
  const rng = new Rng(3);
  const dim = 32;
  const noise = () => Float32Array.from({ length: dim }, () => rng.normal());
  // Keys: 0 = q1, 1 = −q0, 2 = 2·q0 + small noise, 3 = q1 + q0, 4 = noise.
  const n = noise();
  const keys = [
    q1,
    q0.map((v) => -v),
    q0.map((v, i) => 2 * v + 0.01 * n[i]),
    q1.map((v, i) => v + q0[i]),
    noise(),
  ];
  const len = 2;
  const prompts = Float32Array.from({ length: 5 * len * dim }, () => rng.normal());
  const method = createL2p({ poolSize: 5, promptLength: len, topK: 2, batchwise: true });
  method.restore({
    json: {},
    arrays: {
      prompts: { shape: [5, len, dim], data: prompts },
      keys: { shape: [5, dim], data: Float32Array.from(keys.flatMap((k) => [...k])) },
    },
  });
  // Expected by construction: sample 0 → keys 2 (cos ≈ 1) then 3; sample 1 → 0 then 3.
  const sim = (a: Float32Array, b: Float32Array) => {
    let ab = 0, aa = 0, bb = 0;
    for (let i = 0; i < dim; i++) [ab, aa, bb] = [ab + a[i] * b[i], aa + a[i] ** 2, bb + b[i] ** 2];
    return ab / Math.sqrt(aa * bb);
  };
  assert(sim(q0, keys[3]) > sim(q0, keys[0]) && sim(q1, keys[3]) > sim(q1, keys[2]));
  const chosen = [[2, 3], [0, 3]];
  const got = method.forward!(model, x, { training: false });
  const want = tf.tidy(() => {
    const rows = chosen.map((ids) =>
      ids.flatMap((id) => [...prompts.subarray(id * len * dim, (id + 1) * len * dim)])
    );
    return model.promptedLogits!(x, {
      training: false,
      prompts: { tokens: tf.tensor3d(rows.flat(), [2, 2 * len, dim]) },
      pool: "prompts",
    });
  });
  assertEquals([...got.dataSync()], [...want.dataSync()]);
  // Evaluation is per sample: the first image alone gets the same logits as in the batch.
  const alone = method.forward!(model, x.slice([0, 0, 0, 0], [1, 32, 32, 3]), { training: false });
  const diff = Math.max(...alone.dataSync().map((v, i) => Math.abs(v - got.dataSync()[i])));
  assert(diff < 1e-5, `${diff}`);
  // Another choice (the samples' choices swapped) gives other logits.
  const swapped = tf.tidy(() =>
    model.promptedLogits!(x, {
      training: false,
      prompts: {
        tokens: tf.tensor3d(
          [[0, 3], [2, 3]].map((ids) =>
            ids.flatMap((id) => [...prompts.subarray(id * len * dim, (id + 1) * len * dim)])
          ).flat(),
          [2, 2 * len, dim],
        ),
      },
      pool: "prompts",
    })
  );
  assert(Math.max(...swapped.dataSync().map((v, i) => Math.abs(v - got.dataSync()[i]))) > 1e-4);
  tf.dispose([x, q, got, want, alone, swapped]);
  method.dispose();
  model.dispose();
});

Deno.test("l2p: training moves prompts, keys and head only (base and LoRA bit-identical), logs the pull term, leaks nothing; state/restore round trip", async () => {
  await initBackend("cpu");
  const model = microModel(8);
  // A non-zero LoRA B, so that a LoRA leak into the forward or an update would show.
  for (const s of model.loraSites()) tf.tidy(() => s.b.assign(tf.onesLike(s.b).mul(0.05)));
  const frozen = frozenValues(model);
  const head0 = model.headVariables().map((v) => (v.dataSync() as Float32Array).slice());
  const method = createL2p({ poolSize: 6, promptLength: 2, topK: 2 });
  const tensors = tf.memory().numTensors;
  const losses: LossRecord[] = [];
  const { begun, ended } = await train(model, method, losses);
  for (const [name, before] of frozenValues(model)) {
    assertEquals(before, frozen.get(name), `${name} moved`);
  }
  assert(model.headVariables().every((v, i) => changed(v.dataSync() as Float32Array, head0[i])));
  // Prompts and keys move in both tasks (the pool is shared).
  for (const t of [0, 1]) {
    assert(
      changed(begun[t].arrays.prompts.data, ended[t].arrays.prompts.data),
      `prompts, task ${t}`,
    );
    assert(changed(begun[t].arrays.keys.data, ended[t].arrays.keys.data), `keys, task ${t}`);
  }
  assertEquals(begun[1].arrays.prompts.data, ended[0].arrays.prompts.data);
  const pulls = losses.filter((l) => l.term === "key_pull").map((l) => l.value);
  assertEquals(pulls.length, 4); // 2 tasks × 2 steps
  // 0.1·(1/B)·Σ_b Σ_{2 keys} (1 − cos) lies in [0, 0.1·2·2].
  assert(pulls.every((v) => v > 0 && v < 0.4), `${pulls}`);
  const summary = method.taskSummary!() as { promptChoices: number[] };
  assertEquals(summary.promptChoices.reduce((a, b) => a + b, 0), 2 * 8 * 2); // 2 steps × 8 × N
  // state() → a fresh method → identical evaluation logits.
  const x = images(3, 9);
  const a = method.forward!(model, x, { training: false });
  const copy = createL2p({ poolSize: 6, promptLength: 2, topK: 2 });
  copy.restore(method.state());
  const b = copy.forward!(model, x, { training: false });
  assertEquals([...b.dataSync()], [...a.dataSync()]);
  tf.dispose([x, a, b]);
  copy.dispose();
  method.dispose();
  assertEquals(tf.memory().numTensors, tensors);
  model.dispose();
});

Deno.test("l2p: needs a prompt-capable model and a pool", async () => {
  await initBackend("cpu");
  const model = microModel(4);
  const method = createL2p({ poolSize: 3, topK: 1 });
  const x = images(1, 2);
  assertThrows(() => method.forward!(model, x, { training: false }), Error, "beginTask");
  const { promptShape: _, promptedLogits: __, ...plain } = model;
  assertThrows(() => method.beginTask(context(plain as VitClassifier)), Error, "prompt-capable");
  x.dispose();
  model.dispose();
});
