import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  captureCheckpoint,
  loadCheckpoint,
  restoreExtraVariables,
  restoreTrainer,
  saveCheckpoint,
} from "../../lib/train/checkpoint.ts";
import { createAdam } from "../../lib/train/step.ts";
import { Rng } from "../../lib/random.ts";

Deno.test("captureCheckpoint: Adam's slots are captured (iterations, m, v) and no tensor is leaked", async () => {
  await tf.setBackend("cpu");
  const a = tf.variable(tf.tensor2d([[1, 2]]), true, "ckpt_test/a");
  const b = tf.variable(tf.tensor2d([[0.5], [-1]]), true, "ckpt_test/b");
  const model = {
    loraSites: () => [{ name: "s", dIn: 2, dOut: 2, a, b }],
    headVariables: () => [],
  };
  const optimizer = createAdam({ lr: 0.1, beta1: 0.9, beta2: 0.999 });
  optimizer.minimize(() => tf.sum(tf.matMul(b, a)) as tf.Scalar, false, [a, b]);
  const rng = new Rng(1);
  const options = {
    taskIndex: 0,
    optimizer,
    rngs: { data: rng, method: rng, dropout: rng },
    method: { json: {}, arrays: {} },
  };
  const first = await captureCheckpoint(model, options);
  const before = tf.memory().numTensors;
  const second = await captureCheckpoint(model, options);
  assertEquals(tf.memory().numTensors, before);
  // iterations (1 step taken), then m and v of each of the 2 variables.
  assertEquals(first.optimizer!.length, 5);
  assertEquals(Array.from(first.optimizer![0].data), [1]);
  assertEquals(
    second.optimizer!.map((w) => Array.from(w.data)),
    first.optimizer!.map((w) => Array.from(w.data)),
  );
  assertEquals(first.variables.map((v) => v.shape), [[1, 2], [2, 1]]);
  optimizer.dispose();
  a.dispose();
  b.dispose();
});

/** A toy model with one LoRA site, a head and two "base" variables under scope `scope`. */
function toyModel(scope: string, baseShape = [2, 3]) {
  const v = (name: string, values: number[], shape: number[]) =>
    tf.variable(tf.tensor(values, shape), false, `${scope}/${name}`);
  const a = v("a", [1, 2], [1, 2]);
  const b = v("b", [0.5, -1], [2, 1]);
  const head = v("head", [0.25, 0.75], [2]);
  const size = baseShape.reduce((x, y) => x * y, 1);
  const base = [
    v("base.w", Array.from({ length: size }, (_, i) => Math.fround(0.1 * i - 0.3)), baseShape),
    v("base.bias", [Math.fround(1 / 3), -7.5e-8, 1e30], [3]),
  ];
  return {
    loraSites: () => [{ name: "s", dIn: 2, dOut: 2, a, b }],
    headVariables: () => [head],
    base,
    dispose: () => tf.dispose([a, b, head, ...base]),
  };
}

Deno.test("checkpoint: extra variables survive capture, save, load and restore bit-identically, matched by name", async () => {
  await tf.setBackend("cpu");
  const source = toyModel("ckpt_extra0");
  const rng = new Rng(1);
  const rngs = { data: rng, method: rng, dropout: rng };
  const captured = await captureCheckpoint(source, {
    taskIndex: 0,
    optimizer: null,
    rngs,
    method: { json: {}, arrays: {} },
    extra: source.base,
  });
  assertEquals(captured.extra!.map((e) => e.name), ["base.w", "base.bias"]);
  const dir = await Deno.makeTempDir();
  try {
    await saveCheckpoint(dir, captured);
    const loaded = (await loadCheckpoint(dir, 0))!;
    assertEquals(loaded.extra, captured.extra);
    // A fresh model (another scope, as a second model in the same process) with changed values.
    const target = toyModel("ckpt_extra1");
    for (const v of target.base) v.assign(tf.fill(v.shape, 42));
    const extra = [...target.base].reverse(); // matched by name, not by position
    const restored: unknown[] = [];
    const optimizer = await restoreTrainer(target, {
      checkpoint: loaded,
      rngs,
      method: { restore: (s) => restored.push(s) },
      config: { lr: 0.1, beta1: 0.9, beta2: 0.999, resetOptimizerPerTask: true },
      extra,
    });
    assertEquals(optimizer, null);
    assertEquals(restored.length, 1);
    for (let i = 0; i < source.base.length; i++) {
      const want = new Uint32Array((await source.base[i].data() as Float32Array).buffer);
      const got = new Uint32Array((await target.base[i].data() as Float32Array).buffer);
      assertEquals(got, want);
    }
    target.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    source.dispose();
  }
});

Deno.test("checkpoint: an extra variable with another shape or missing is named in the error; older checkpoints still load", async () => {
  await tf.setBackend("cpu");
  const source = toyModel("ckpt_extra2");
  const rng = new Rng(1);
  const options = {
    taskIndex: 2,
    optimizer: null,
    rngs: { data: rng, method: rng, dropout: rng },
    method: { json: {}, arrays: {} },
  };
  const checkpoint = await captureCheckpoint(source, { ...options, extra: source.base });
  const other = toyModel("ckpt_extra3", [3, 2]);
  const before = await other.base[1].data();
  const e = assertThrows(() => restoreExtraVariables(other.base, checkpoint), Error);
  assert(
    e.message.includes("base.w") && e.message.includes("[2,3]") && e.message.includes("[3,2]"),
  );
  assert(e.message.includes("after task 3"));
  // Nothing is assigned when one variable does not match.
  assertEquals(await other.base[1].data(), before);
  // A checkpoint without the field (an older file, or a LoRA-only method): loads, and restoring
  // extra variables from it names the missing one.
  const dir = await Deno.makeTempDir();
  try {
    const old = await captureCheckpoint(source, options);
    assertEquals(old.extra, undefined);
    await saveCheckpoint(dir, old);
    const meta = JSON.parse(await Deno.readTextFile(`${dir}/task-03.json`));
    assertEquals("extra" in meta, false);
    const loaded = (await loadCheckpoint(dir, 2))!;
    assertEquals(loaded.extra, undefined);
    assertEquals(loaded.variables, old.variables);
    restoreExtraVariables([], loaded);
    const missing = assertThrows(() => restoreExtraVariables(source.base, loaded), Error);
    assert(missing.message.includes("base.w"));
  } finally {
    await Deno.remove(dir, { recursive: true });
    source.dispose();
    other.dispose();
  }
});
