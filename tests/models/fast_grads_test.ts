import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  FAST_MATMUL_GRADIENT,
  isFastMatMulGradientRegistered,
  registerFastMatMulGradient,
  restoreStockMatMulGradient,
} from "../../lib/models/fast_grads.ts";
import { Rng } from "../../lib/random.ts";
import { initBackend } from "../../lib/run/backend.ts";
import { maxAbsDiff } from "../helpers.ts";

function randomTensor(shape: number[], rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rng.normal()), shape);
}

/** d/da, d/db of sum(w ⊙ matMul(a, b, tA, tB)) with whichever gradient is registered. */
async function grads(
  a: tf.Tensor,
  b: tf.Tensor,
  w: tf.Tensor,
  tA: boolean,
  tB: boolean,
): Promise<Float32Array[]> {
  const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.mul(tf.matMul(x, y, tA, tB), w))
  )([a, b]);
  const out = [(await ga.data()) as Float32Array, (await gb.data()) as Float32Array];
  ga.dispose();
  gb.dispose();
  return out;
}

/** Shapes [batch…, m, k] · [batch…, k, n] for each rank, stored as the flags require. */
const CASES: { batch: number[]; m: number; k: number; n: number }[] = [
  { batch: [], m: 3, k: 4, n: 5 },
  { batch: [2], m: 3, k: 4, n: 5 },
  { batch: [2, 3], m: 4, k: 2, n: 3 },
];

Deno.test("fast BatchMatMul gradient equals the stock gradient on cpu (4 flag combos, 2-D/3-D/4-D)", async () => {
  await initBackend("cpu");
  const rng = new Rng(7);
  let compared = 0;
  for (const { batch, m, k, n } of CASES) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const a = randomTensor([...batch, ...(tA ? [k, m] : [m, k])], rng);
        const b = randomTensor([...batch, ...(tB ? [n, k] : [k, n])], rng);
        const w = randomTensor([...batch, m, n], rng);
        restoreStockMatMulGradient();
        assert(!isFastMatMulGradientRegistered());
        const stock = await grads(a, b, w, tA, tB);
        registerFastMatMulGradient();
        assert(isFastMatMulGradientRegistered());
        const fast = await grads(a, b, w, tA, tB);
        const where = `batch [${batch}] tA=${tA} tB=${tB}`;
        assert(maxAbsDiff(stock[0], fast[0]) < 1e-5, `dA differs for ${where}`);
        assert(maxAbsDiff(stock[1], fast[1]) < 1e-5, `dB differs for ${where}`);
        // Not a trivial pass: the gradients are non-zero.
        assert(stock[0].some((v) => Math.abs(v) > 1e-3));
        tf.dispose([a, b, w]);
        compared++;
      }
    }
  }
  assertEquals(compared, 12);
});

Deno.test("fast BatchMatMul gradient matches a hand computation (2-D, no flags)", async () => {
  await initBackend("cpu");
  registerFastMatMulGradient();
  // y = a·b, loss = sum(y): dA = 1·bᵀ (row sums of b), dB = aᵀ·1 (column sums of a).
  const a = tf.tensor2d([[1, 2], [3, 4]]);
  const b = tf.tensor2d([[5, 6, 7], [8, 9, 10]]);
  const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y)))([a, b]);
  assertEquals(Array.from(await ga.data()), [18, 27, 18, 27]);
  assertEquals(Array.from(await gb.data()), [4, 4, 4, 6, 6, 6]);
  tf.dispose([a, b, ga, gb]);
});

Deno.test("fast BatchMatMul gradient rejects broadcast batch dimensions with a clear error", async () => {
  await initBackend("cpu");
  registerFastMatMulGradient();
  const a = tf.ones([2, 3, 4]);
  const b = tf.ones([1, 4, 5]);
  assertThrows(
    () => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y)))([a, b]),
    Error,
    "batch dimensions must match exactly",
  );
  tf.dispose([a, b]);
  assertEquals(FAST_MATMUL_GRADIENT.kernelName, "BatchMatMul");
});
