import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { type BackendName, initBackend } from "../../lib/run/backend.ts";
import { isFastMatMulGradientRegistered } from "../../lib/models/fast_grads.ts";

Deno.test("initBackend('cpu') selects cpu and installs the fast BatchMatMul gradient", async () => {
  const info = await initBackend("cpu");
  assertEquals(info.requested, "cpu");
  assertEquals(info.name, "cpu");
  assertEquals(tf.getBackend(), "cpu");
  assertEquals(info.tfjsVersion, "4.22.0");
  assert(info.fastMatMulGradient && isFastMatMulGradientRegistered());
  assert(info.note.includes("cpu"));
  // Native BLAS is on when a library is found, and the note says either way.
  assertEquals(typeof info.blas.enabled, "boolean");
  assertStringIncludes(info.note, info.blas.note);
  assertEquals(info.blas.kernels, info.blas.enabled ? ["BatchMatMul"] : []);
});

Deno.test("initBackend('wasm') selects wasm and reports SIMD and threads", async () => {
  const info = await initBackend("wasm");
  assertEquals(info.name, "wasm");
  assertEquals(tf.getBackend(), "wasm");
  assertEquals(info.simd, true);
  assertEquals(info.threads, 1);
  const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2]));
  assertEquals(Array.from(await y.data()), [3, 3, 3, 3]);
  y.dispose();
});

Deno.test("initBackend('auto') falls back to wasm when no native TensorFlow is installed", async () => {
  const info = await initBackend("auto");
  assertEquals(info.requested, "auto");
  // tfjs-node is not a dependency; if someone installed it, tensorflow is the right answer.
  assert(["wasm", "tensorflow"].includes(info.name), info.name);
  if (info.name === "wasm") assert(info.note.includes("tfjs-node not installed"), info.note);
});

Deno.test("initBackend: optional backends fail with a clear message; fastGradients: false restores stock", async () => {
  await assertRejects(
    () => initBackend("tensorflow"),
    Error,
    "@tensorflow/tfjs-node is not installed",
  );
  if ((navigator as unknown as { gpu?: unknown }).gpu) {
    await assertRejects(() => initBackend("webgpu"), Error, "tfjs-backend-webgpu is not installed");
  }
  await assertRejects(() => initBackend("gpu" as BackendName), Error, 'unknown backend "gpu"');
  await assertRejects(
    () => initBackend("cpu", { blasThreads: 0 }),
    Error,
    "blasThreads must be a positive integer",
  );
  const info = await initBackend("cpu", { fastGradients: false });
  assert(!info.fastMatMulGradient && !isFastMatMulGradientRegistered());
  await initBackend("cpu");
  assert(isFastMatMulGradientRegistered());
});
