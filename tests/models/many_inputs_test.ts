/**
 * lib/models/many_inputs.ts: sums and stacks of up to 40 tensors equal tf.addN / tf.stack on
 * the cpu backend bit for bit (the additions keep AddN's order), gradients included.
 */

import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { addN, MAX_INPUTS, stack } from "../../lib/models/many_inputs.ts";
import { Rng } from "../../lib/random.ts";

Deno.test("addN and stack: the same values as tf.addN and tf.stack for 1…40 inputs, no tensor left", async () => {
  await initBackend("cpu", { blas: "off" });
  const rng = new Rng(4);
  for (const n of [1, 2, MAX_INPUTS, MAX_INPUTS + 1, 8, 9, 12, 40]) {
    const xs = Array.from(
      { length: n },
      () => tf.tensor1d([rng.normal(), rng.normal() * 1e3, 1e-7]),
    );
    const before = tf.memory().numTensors;
    const [ours, theirs, oursStack, theirsStack] = [addN(xs), tf.addN(xs), stack(xs), tf.stack(xs)];
    assertEquals(Array.from(await ours.data()), Array.from(await theirs.data()), `addN of ${n}`);
    assertEquals(oursStack.shape, [n, 3]);
    assertEquals(await oursStack.array(), await theirsStack.array(), `stack of ${n}`);
    tf.dispose([ours, theirs, oursStack, theirsStack]);
    // along axis 1: one tensor more, nothing else left
    const s1 = stack(xs, 1);
    assertEquals(s1.shape, [3, n]);
    assertEquals(tf.memory().numTensors, before + 1);
    s1.dispose();
    tf.dispose(xs);
  }
  // 1…12 as scalars: 78 (what tfjs-webgpu 4.22's AddN gets wrong, module doc)
  const twelve = Array.from({ length: 12 }, (_, i) => tf.scalar(i + 1));
  assertEquals((await addN(twelve).data())[0], 78);
  tf.dispose(twelve);
  assertThrows(() => addN([]), Error, "no tensors");
});

Deno.test("addN: the gradient reaches every input", async () => {
  await initBackend("cpu", { blas: "off" });
  const xs = Array.from({ length: 10 }, (_, i) => tf.scalar(i));
  const grads = tf.grads((...t: tf.Tensor[]) => tf.mul(addN(t), 2))(xs);
  assertEquals(await Promise.all(grads.map(async (g) => (await g.data())[0])), Array(10).fill(2));
  tf.dispose([...xs, ...grads]);
});
