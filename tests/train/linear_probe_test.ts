import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { linearProbe, type ProbeSet } from "../../lib/train/linear_probe.ts";
import { initBackend } from "../../lib/run/backend.ts";
import { Rng } from "../../lib/random.ts";

await initBackend("cpu");

/** Gaussian blobs: class c centred at 4·e_c in 8 dimensions, unit noise. */
function blobs(rng: Rng, perClass: number, classes: number): ProbeSet {
  const dim = 8;
  const rows = perClass * classes;
  const features = new Float32Array(rows * dim);
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const c = i % classes;
    labels[i] = c;
    for (let j = 0; j < dim; j++) features[i * dim + j] = (j === c ? 4 : 0) + 0.5 * rng.normal();
  }
  return { features, labels, dim };
}

Deno.test("linearProbe: 100 % on separable features; near chance on shuffled labels; no tensor left", async () => {
  const rng = new Rng(1);
  const before = tf.memory().numTensors;
  const train = blobs(rng, 40, 4);
  const test = blobs(rng, 25, 4);
  const r = await linearProbe(train, test, { numClasses: 4, epochs: 150 });
  assertEquals(r.testAccuracy, 100);
  assertEquals(r.trainAccuracy, 100);
  // The labels carry no information about the features: the test accuracy is chance (25 %)
  // within sampling error (100 rows: ± 2·4.3 points).
  const shuffled: ProbeSet = {
    ...train,
    labels: Int32Array.from(new Rng(9).shuffle(Array.from(train.labels))),
  };
  const testShuffled: ProbeSet = {
    ...test,
    labels: Int32Array.from(new Rng(10).shuffle(Array.from(test.labels))),
  };
  const s = await linearProbe(shuffled, testShuffled, { numClasses: 4, epochs: 150 });
  assert(Math.abs(s.testAccuracy - 25) <= 12, `shuffled labels: ${s.testAccuracy} %`);
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("linearProbe: errors name the set, the row and what was expected", async () => {
  const ok: ProbeSet = { features: new Float32Array(4), labels: Int32Array.of(0, 1), dim: 2 };
  await assertRejects(
    () => linearProbe({ ...ok, labels: Int32Array.of(0, 5) }, ok, { numClasses: 2 }),
    Error,
    "train row 1 has label 5, outside 0…1",
  );
  await assertRejects(
    () => linearProbe(ok, { ...ok, features: new Float32Array(3) }, { numClasses: 2 }),
    Error,
    "test has 3 feature values for 2 rows × 2",
  );
});
