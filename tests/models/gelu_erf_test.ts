import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { geluErf, geluTanh } from "../../lib/models/layers.ts";
import { createVit, VIT_PRESETS, type VitConfig } from "../../lib/models/vit.ts";
import { Rng } from "../../lib/random.ts";
import { geluExact } from "./reference_vit.ts";

Deno.test("geluErf: within 1e-6 of the float64 exact GELU; the tanh form differs by up to 4.73e-4", async () => {
  await initBackend("cpu");
  const xs = Float32Array.from({ length: 4001 }, (_, i) => -10 + i * 0.005);
  const erf = tf.tidy(() => geluErf(tf.tensor1d(xs)).dataSync());
  const tanh = tf.tidy(() => geluTanh(tf.tensor1d(xs)).dataSync());
  let errErf = 0;
  let errTanh = 0;
  let at = 0;
  xs.forEach((x, i) => {
    const exact = geluExact(x);
    errErf = Math.max(errErf, Math.abs(erf[i] - exact));
    if (Math.abs(tanh[i] - exact) > errTanh) {
      errTanh = Math.abs(tanh[i] - exact);
      at = x;
    }
  });
  assert(errErf < 1e-6, `geluErf error ${errErf}`);
  assert(errTanh > 4.6e-4 && errTanh < 4.8e-4, `tanh error ${errTanh}`);
  assert(Math.abs(Math.abs(at) - 2.7) < 0.05, `largest tanh error at ${at}`);
});

Deno.test("vit gelu option: absent = tanh (unchanged default); erf differs; bad values refused", async () => {
  await initBackend("cpu");
  const base: VitConfig = { ...VIT_PRESETS.micro };
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const run = (c: VitConfig) => {
    const vit = createVit(c, { rng: new Rng(0) });
    const f = vit.features(x, { training: false });
    const out = Array.from(f.dataSync());
    f.dispose();
    vit.dispose();
    return out;
  };
  const dflt = run(base);
  assertEquals(run({ ...base, gelu: "tanh" }), dflt);
  assert(run({ ...base, gelu: "erf" }).some((v, i) => v !== dflt[i]));
  assertThrows(
    () => createVit({ ...base, gelu: "relu" as "erf" }, { rng: new Rng(0) }),
    Error,
    `VitConfig: gelu must be "tanh" or "erf", got "relu"`,
  );
  x.dispose();
});
