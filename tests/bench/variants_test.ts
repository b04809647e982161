import { assertEquals, assertThrows } from "@std/assert";
import { chooseVariants, KNOWN_VARIANTS, variantOf } from "../../experiments/bench/variants.ts";
import { initBackend } from "../../lib/run/backend.ts";

Deno.test("variantOf: backend, BLAS and fused from the name; an unknown name lists the known", () => {
  assertEquals(variantOf("wasm+blas-unfused"), {
    name: "wasm+blas-unfused",
    backend: "wasm",
    blas: true,
    fused: false,
  });
  assertEquals(variantOf("webgpu"), {
    name: "webgpu",
    backend: "webgpu",
    blas: false,
    fused: true,
  });
  assertEquals(KNOWN_VARIANTS.length, 12);
  assertThrows(() => variantOf("wasm+mkl"), Error, 'unknown variant "wasm+mkl"; known: wasm,');
});

Deno.test("chooseVariants: a GPU backend that did not start and +blas without BLAS are skipped with the reason", () => {
  const r = chooseVariants(["wasm", "wasm+blas", "webgpu-unfused", "tensorflow"].map(variantOf), {
    blas: { enabled: false, note: "native BLAS off (--blas off)" },
    gpuFailures: new Map([["webgpu", "this runtime has no navigator.gpu"]]),
  });
  assertEquals(r.variants.map((v) => v.name), ["wasm", "tensorflow"]);
  assertEquals(r.skipped, [
    { variant: "wasm+blas", reason: "native BLAS off (--blas off)" },
    {
      variant: "webgpu-unfused",
      reason: "no webgpu backend here: this runtime has no navigator.gpu",
    },
  ]);
});

Deno.test("on this machine without a GPU backend, starting webgpu and tensorflow fails with a reason the bench can print", async () => {
  for (const name of ["webgpu", "tensorflow"] as const) {
    let reason = "";
    try {
      await initBackend(name, { blas: "off" });
    } catch (err) {
      reason = (err as Error).message;
    }
    // Where a GPU backend is installed this test has nothing to show; it says so and passes.
    if (reason === "") {
      console.log(`${name} started here: the skip path is not exercised`);
      continue;
    }
    assertEquals(reason.startsWith(`initBackend("${name}")`), true, reason);
  }
  await initBackend("cpu");
});
