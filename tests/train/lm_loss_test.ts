import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { IGNORE_INDEX, lmLoss, shiftLabels } from "../../lib/train/lm_loss.ts";

const X = IGNORE_INDEX;

function logSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const z = Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
  return row.map((v) => v - z);
}

Deno.test("shiftLabels: position t gets label t + 1; the last position of each row is ignored", () => {
  const labels = Int32Array.from([X, 5, 6, X, X, 7]);
  assertEquals(Array.from(shiftLabels(labels, { batch: 2, tokens: 3 })), [5, 6, X, X, 7, X]);
  assertThrows(() => shiftLabels(labels, { batch: 2, tokens: 2 }), Error, "6 labels");
});

Deno.test("lmLoss: hand-computed masked next-token cross-entropy", async () => {
  await initBackend("wasm");
  // B = 2, T = 3, V = 3. Row 0 labels [X, 2, 0] → targets [2, 0, X]; row 1 [X, X, 1] → [X, 1, X].
  const rows = [
    [1, 2, 0.5],
    [0, -1, 3],
    [9, 9, 9], // last position: never counted
    [4, 0, 0], // ignored
    [0.2, 0.1, -0.3],
    [5, 5, 5],
  ];
  const logits = tf.tensor3d(rows.flat(), [2, 3, 3]);
  const labels = Int32Array.from([X, 2, 0, X, X, 1]);
  const expected = -(logSoftmax(rows[0])[2] + logSoftmax(rows[1])[0] + logSoftmax(rows[4])[1]) /
    3;
  const loss = lmLoss(logits, labels);
  assertAlmostEquals((await loss.data())[0], expected, 1e-5);
  // Its gradient is softmax − onehot at the counted rows (divided by the count), 0 elsewhere.
  const g = tf.grad((x: tf.Tensor) => lmLoss(x as tf.Tensor3D, labels))(logits);
  const gv = await g.data();
  const p0 = logSoftmax(rows[0]).map(Math.exp);
  assertAlmostEquals(gv[2], (p0[2] - 1) / 3, 1e-5);
  assertAlmostEquals(gv[0], p0[0] / 3, 1e-5);
  assertEquals(Array.from(gv.subarray(6, 12)), [0, 0, 0, 0, 0, 0]);
  tf.dispose([logits, loss, g]);
});

Deno.test("lmLoss: uniform logits give ln V; no counted position gives 0; bad labels throw", async () => {
  await initBackend("cpu");
  const z = tf.zeros([1, 4, 5]) as tf.Tensor3D;
  const uniform = lmLoss(z, Int32Array.from([X, 1, 2, 3]));
  assertAlmostEquals((await uniform.data())[0], Math.log(5), 1e-6);
  const none = lmLoss(z, Int32Array.from([1, X, X, X]));
  assertEquals((await none.data())[0], 0);
  assertThrows(() => lmLoss(z, Int32Array.from([X, 5, 0, 0])), Error, "outside the vocabulary");
  tf.dispose([z, uniform, none]);
});
