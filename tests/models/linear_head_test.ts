import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createLinearHead } from "../../lib/models/linear_head.ts";
import { Rng } from "../../lib/random.ts";

Deno.test("linear head: logits = features·W + b with W [dim, numClasses]", async () => {
  await initBackend("cpu");
  const head = createLinearHead({ dim: 2, numClasses: 3, rng: new Rng(0), init: "zeros" });
  assertEquals(head.weight.shape, [2, 3]);
  assertEquals(Array.from(await head.weight.data()), [0, 0, 0, 0, 0, 0]);
  tf.tidy(() => {
    head.weight.assign(tf.tensor2d([[1, 0, -1], [2, 1, 0]]));
    head.bias.assign(tf.tensor1d([0.5, 0, 0]));
  });
  const y = head.logits(tf.tensor2d([[1, 1], [0, 2]]));
  assertEquals(Array.from(await y.data()), [3.5, 1, -1, 4.5, 2, 0]);
  assertEquals(head.variables().length, 2);
  assert(head.variables().every((v) => v.trainable));
  assertThrows(
    () => head.logits(tf.ones([1, 3]) as tf.Tensor2D),
    Error,
    "expected features [B, 2]",
  );
  y.dispose();
  head.dispose();
});

Deno.test("linear head: default init is a truncated normal (std 0.02) from the rng, bias 0", async () => {
  await initBackend("cpu");
  const a = createLinearHead({ dim: 64, numClasses: 50, rng: new Rng(1) });
  const b = createLinearHead({ dim: 64, numClasses: 50, rng: new Rng(1) });
  const c = createLinearHead({ dim: 64, numClasses: 50, rng: new Rng(2) });
  const w = Array.from(await a.weight.data());
  assertEquals(Array.from(await b.weight.data()), w);
  assertNotEquals(Array.from(await c.weight.data()), w);
  assertNotEquals(a.weight.name, b.weight.name);
  assert(w.every((v) => Math.abs(v) <= 0.04));
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
  assertAlmostEquals(mean, 0, 0.002);
  assert(std > 0.015 && std < 0.02, `std ${std}`); // ±2σ truncation shrinks σ by ~12%
  assert((await a.bias.data()).every((v) => v === 0));
  [a, b, c].forEach((h) => h.dispose());
});
