import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { initBackend, nativeMatMulStatus, setNativeMatMul } from "../lib/run/backend.ts";
import {
  BLAS_DIRS,
  blasCandidates,
  blasFileRefusal,
  configureNativeMatMul,
  planMatMul,
  setAliasingCopies,
  SMALL_PRODUCT_MACS,
} from "../lib/native_blas.ts";
import { createVitClassifier } from "../lib/models/vit_classifier.ts";
import { VIT_PRESETS } from "../lib/models/vit.ts";
import { createAdam, optimizerStep } from "../lib/train/step.ts";
import { Rng } from "../lib/random.ts";
import { tinyElf, withTempDir } from "./helpers.ts";

// Load the wasm backend's kernels, then see whether a native BLAS library is there.
await initBackend("wasm");
const PROBE = nativeMatMulStatus();
const HAVE_BLAS = PROBE.enabled;
const IGNORE_WHY = HAVE_BLAS ? "" : ` [ignored: ${PROBE.note}; CI installs libopenblas0-pthread]`;

/** One BatchMatMul case: shapes of a and b as stored, and the transpose flags. */
interface Case {
  a: number[];
  b: number[];
  ta: boolean;
  tb: boolean;
}

/** Every transpose combination for batch [..batch] × [..batchB] with op(a) [m,k], op(b) [k,n]. */
function cases(batchA: number[], batchB: number[], m: number, k: number, n: number): Case[] {
  const out: Case[] = [];
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      out.push({
        a: [...batchA, ...(ta ? [k, m] : [m, k])],
        b: [...batchB, ...(tb ? [n, k] : [k, n])],
        ta,
        tb,
      });
    }
  }
  return out;
}

const SAME_BATCH: Case[] = [
  ...cases([], [], 7, 5, 3), // 2-D
  ...cases([], [], 33, 64, 17),
  ...cases([4], [4], 6, 9, 5), // batched, same batch
  ...cases([1], [1], 6, 9, 5), // batch of 1
  ...cases([2, 3], [2, 3], 4, 3, 2), // two batch axes
  ...cases([], [], 1, 1, 1), // size-1 dims
  ...cases([3], [3], 1, 8, 1),
  ...cases([3], [3], 5, 1, 4),
];
const BROADCAST: Case[] = [
  ...cases([5], [], 6, 4, 3), // a batched, b 2-D (folds into one sgemm when a is not transposed)
  ...cases([], [5], 6, 4, 3), // b batched, a 2-D
  ...cases([2, 1], [1, 3], 3, 4, 5), // both broadcast
  ...cases([2, 3], [3], 3, 2, 4), // ranks differ
  ...cases([3], [1], 2, 2, 2),
];
const EMPTY: Case[] = [
  ...cases([], [], 0, 4, 3), // m = 0
  ...cases([], [], 3, 4, 0), // n = 0
  ...cases([], [], 3, 0, 4), // k = 0: zeros
  ...cases([0], [0], 3, 4, 2), // no matrices
  ...cases([2], [2], 3, 0, 2),
];

function randomArray(rng: Rng, size: number): Float32Array {
  const x = new Float32Array(size);
  for (let i = 0; i < size; i++) x[i] = rng.normal();
  return x;
}

const tidyKeep = <T extends tf.Tensor>(f: () => T): T => tf.tidy(f);

const sizeOf = (s: number[]) => s.reduce((p, d) => p * d, 1);

/**
 * Forward value and gradients of sum(op(a)·op(b) ⊙ w) on the active backend, as arrays. With
 * `explicit`, both operands are first broadcast to the full output batch (`tf.broadcastTo`,
 * whose gradient sums over the broadcast axes): the reference form, since tfjs's stock kernels
 * only broadcast a batch of one.
 */
function evaluate(c: Case, seed: number, grads: boolean, explicit = false): Float32Array[] {
  const rng = new Rng(seed);
  const a = tf.tensor(randomArray(rng, sizeOf(c.a)), c.a);
  const b = tf.tensor(randomArray(rng, sizeOf(c.b)), c.b);
  const batch = planMatMul(c.a, c.b, c.ta, c.tb).outShape.slice(0, -2);
  const full = (x: tf.Tensor) => explicit ? tf.broadcastTo(x, [...batch, ...x.shape.slice(-2)]) : x;
  const mm = (x: tf.Tensor, z: tf.Tensor) => tf.matMul(full(x), full(z), c.ta, c.tb);
  const y = tidyKeep(() => mm(a, b));
  const w = tf.tensor(randomArray(rng, y.size), y.shape);
  const out = [y.dataSync() as Float32Array];
  if (grads) {
    const [da, db] = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(mm(x, z), w)))([a, b]);
    assertEquals(da.shape, c.a);
    assertEquals(db.shape, c.b);
    out.push(da.dataSync() as Float32Array, db.dataSync() as Float32Array);
    tf.dispose([da, db]);
  }
  tf.dispose([a, b, y, w]);
  return out;
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assertEquals(actual.length, expected.length, `${what}: length`);
  let scale = 1;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert(d <= 1e-4 * scale, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (scale ${scale})`);
  }
}

/** Check every case: native wasm and native cpu against the stock cpu kernel. */
async function checkCases(list: Case[], grads: boolean): Promise<void> {
  const before = tf.memory().numTensors;
  for (const [i, c] of list.entries()) {
    const what = `a [${c.a}] b [${c.b}] transposeA=${c.ta} transposeB=${c.tb}`;
    setNativeMatMul(false);
    await tf.setBackend("cpu");
    const reference = evaluate(c, i, grads, true);
    setNativeMatMul(true);
    const empty = [...c.a, ...c.b].includes(0);
    for (const backend of ["cpu", "wasm"]) {
      await tf.setBackend(backend);
      assert(nativeMatMulStatus().enabled);
      // The wasm backend's own Sum and Transpose kernels fail on empty tensors (garbage sums,
      // "divide by zero"): gradients of empty cases are checked on the cpu backend only.
      const got = evaluate(c, i, grads && !(empty && backend === "wasm"));
      const names = ["value", "dA", "dB"];
      got.forEach((g, j) => assertClose(g, reference[j], `${backend} ${names[j]} of ${what}`));
    }
  }
  assertEquals(tf.memory().numTensors, before, "tensor leak");
  await tf.setBackend("wasm");
}

Deno.test({
  name: "native BatchMatMul matches the cpu kernel: values and gradients, every transpose" +
    IGNORE_WHY,
  ignore: !HAVE_BLAS,
  fn: async () => {
    await initBackend("wasm");
    await checkCases([...SAME_BATCH, ...EMPTY], true);
  },
});

Deno.test({
  name: "native BatchMatMul matches the cpu kernel: broadcast batch (values)" +
    IGNORE_WHY,
  ignore: !HAVE_BLAS,
  fn: async () => {
    await initBackend("wasm");
    // Values only: no tfjs BatchMatMul gradient (stock or fast) reduces over broadcast batches.
    await checkCases(BROADCAST, false);
  },
});

Deno.test({
  name: "native BatchMatMul: random shapes against the cpu kernel" + IGNORE_WHY,
  ignore: !HAVE_BLAS,
  fn: async () => {
    await initBackend("wasm");
    const rng = new Rng(7);
    const list: Case[] = [];
    for (let t = 0; t < 12; t++) {
      const batch = Array.from({ length: rng.int(3) }, () => 1 + rng.int(3));
      const [m, k, n] = [1 + rng.int(20), 1 + rng.int(40), 1 + rng.int(20)];
      list.push(cases(batch, batch, m, k, n)[rng.int(4)]);
    }
    await checkCases(list, true);
  },
});

Deno.test({
  name: "native BatchMatMul: an output that grows the wasm heap is written to the new heap" +
    IGNORE_WHY,
  ignore: !HAVE_BLAS,
  fn: async () => {
    await initBackend("wasm");
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8;
    const before = heap().buffer.byteLength;
    // An [n, n] output larger than the whole current heap: makeOutput must grow it.
    const n = Math.ceil(Math.sqrt(before / 4)) + 64;
    const a = tf.fill([n, 1], 2);
    const b = tf.fill([1, n], 0.25);
    const y = tf.matMul(a, b);
    assert(heap().buffer.byteLength > before, "the heap should have grown");
    const v = await y.data();
    assertEquals([v[0], v[n * n - 1], v[Math.floor(n * n / 2)]], [0.5, 0.5, 0.5]);
    tf.dispose([a, b, y]);
  },
});

Deno.test({
  name: "native BatchMatMul reads operands that are views (slices) of other tensors" + IGNORE_WHY,
  ignore: !HAVE_BLAS,
  fn: async () => {
    for (const backend of ["cpu", "wasm"]) {
      await initBackend(backend as "cpu" | "wasm");
      const results: Float32Array[] = [];
      for (const on of [false, true]) {
        setNativeMatMul(on);
        const x = tf.tensor(randomArray(new Rng(5), 6 * 4 * 5), [6, 4, 5]);
        // A contiguous slice: the cpu backend keeps it as a subarray of x's values.
        const a = tf.slice(x, [2, 0, 0], [3, 4, 5]);
        const b = tf.slice(x, [1, 0, 0], [1, 4, 5]).reshape([4, 5]);
        const y = tf.matMul(a, b, false, true);
        results.push(y.dataSync() as Float32Array);
        tf.dispose([x, a, b, y]);
      }
      assertClose(results[1], results[0], `${backend} sliced operands`);
    }
    await initBackend("wasm");
  },
});

/** Losses of `steps` Adam steps of a ViT-micro LoRA classifier on fixed random data. */
async function trajectory(steps: number): Promise<number[]> {
  const model = createVitClassifier(VIT_PRESETS.micro, { numOutputs: 10, rng: new Rng(3) });
  const rng = new Rng(4);
  const x = tf.tensor4d(randomArray(rng, 16 * 32 * 32 * 3), [16, 32, 32, 3]);
  const ids = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), "int32");
  const labels = tf.oneHot(ids, 10);
  const variables = [
    ...model.loraSites().flatMap((s) => [s.a, s.b]),
    ...(model.headVariables?.() ?? []),
  ];
  const optimizer = createAdam({ lr: 1e-2 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const r = await optimizerStep(variables, () => ({
      total: tf.losses.softmaxCrossEntropy(
        labels,
        model.logits(x, { training: false }),
      ) as tf.Scalar,
      terms: {},
    }), { optimizer, clipNorm: 1 });
    losses.push(r.total);
  }
  optimizer.dispose();
  tf.dispose([x, ids, labels]);
  model.dispose();
  return losses;
}

Deno.test({
  name: "a ViT-micro LoRA training trajectory is the same with and without native BLAS" +
    IGNORE_WHY,
  ignore: !HAVE_BLAS,
  fn: async () => {
    await initBackend("wasm");
    const before = tf.memory().numTensors;
    setNativeMatMul(false);
    const stock = await trajectory(5);
    setNativeMatMul(true);
    const native = await trajectory(5);
    assertEquals(tf.memory().numTensors, before, "tensor leak");
    assert(stock[4] < stock[0], `the loss should fall: ${stock}`);
    for (let i = 0; i < stock.length; i++) {
      assert(
        Math.abs(native[i] - stock[i]) <= 1e-4 * Math.max(1, Math.abs(stock[i])),
        `step ${i}: native ${native[i]} vs stock ${stock[i]}`,
      );
    }
  },
});

Deno.test({
  name: "initBackend records the native library, its threads and kernels" + IGNORE_WHY,
  ignore: !HAVE_BLAS,
  fn: async () => {
    const info = await initBackend("wasm", { blasThreads: 1 });
    assert(info.blas.enabled);
    assertEquals(info.blas.kernels, ["BatchMatMul"]);
    assert(info.blas.library);
    assertEquals(info.blas.threads, 1);
    assertStringIncludes(info.note, "cblas_sgemm");
    const cpu = await initBackend("cpu");
    assert(cpu.blas.enabled);
    assertEquals(cpu.blas.threads, navigator.hardwareConcurrency);
    assertEquals(nativeMatMulStatus(), cpu.blas);
    await initBackend("wasm");
  },
});

Deno.test("blas 'off' and an unusable path leave the stock kernel and say why", async () => {
  const off = await initBackend("wasm", { blas: "off" });
  assert(!off.blas.enabled);
  assertEquals(off.blas.kernels, []);
  assertStringIncludes(off.blas.note, "--blas off");
  const stockKernel = tf.getKernel("BatchMatMul", "wasm");
  const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2]));
  assertEquals(Array.from(await y.data()), [3, 3, 3, 3]);
  y.dispose();

  if (HAVE_BLAS) {
    const on = await initBackend("wasm");
    assert(on.blas.enabled);
    assert(tf.getKernel("BatchMatMul", "wasm") !== stockKernel);
  }
  const bad = await initBackend("wasm", { blas: "/nonexistent/libopenblas.so.0" });
  assert(!bad.blas.enabled);
  assertStringIncludes(bad.blas.note, "cannot use /nonexistent/libopenblas.so.0");
  assertStringIncludes(bad.blas.note, "stock wasm BatchMatMul");
  assert(tf.getKernel("BatchMatMul", "wasm") === stockKernel);

  await initBackend("wasm"); // back to the default for the other tests
});

Deno.test("without --allow-ffi the backend falls back to the stock kernel with one line", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    const backend = new URL("../lib/run/backend.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { initBackend } from "${backend}";\n` +
        `const info = await initBackend("wasm");\n` +
        `console.log(JSON.stringify(info.blas));\n`,
    );
    const config = new URL("../deno.json", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", config, "--allow-read", "--allow-env", "--no-prompt", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, stderr);
    const blas = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    assertEquals(blas.enabled, false);
    assertStringIncludes(
      blas.note,
      HAVE_BLAS ? "--allow-ffi does not cover it" : "no BLAS library found",
    );
    assertEquals(stderr.split("\n").filter((l) => l.includes("native BLAS")).length, 1, stderr);
  } finally {
    await Deno.remove(script);
  }
});

Deno.test("planMatMul validates shapes with clear errors", () => {
  assertThrows(
    () => planMatMul([2, 3], [4, 5], false, false),
    Error,
    "inner dimensions must match",
  );
  assertThrows(() => planMatMul([3], [3, 5], false, false), Error, "rank >= 2");
  const p = planMatMul([2, 1, 3, 4], [5, 4, 6], false, false);
  assertEquals(p.outShape, [2, 5, 3, 6]);
  assertEquals([p.aIndex(7), p.bIndex(7)], [1, 2]);
  assertThrows(() => planMatMul([2, 3, 4], [3, 4, 5], false, false), Error);
});

Deno.test("wasm Identity and same-dtype Cast share the buffer; gradients are bit-identical", async () => {
  await initBackend("wasm");
  const dataIdOf = (t: tf.Tensor) => (t as unknown as { dataId: object }).dataId;
  const grads = async () => {
    const x = tf.tensor2d([[0.5, -1.25, 2], [3, 0.1, -0.7]]);
    const w0 = tf.tensor2d([[0.2, -0.3], [0.4, 0.1], [-0.5, 0.6]]);
    const w = tf.variable(w0);
    w0.dispose();
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(tf.sigmoid(tf.matMul(x, w)), tf.square(tf.matMul(x, w)))) as tf.Scalar,
      [w],
    );
    const out = [await value.data(), await grads[w.name].data()];
    tf.dispose([x, w, value, grads[w.name]]);
    return out.map((a) => Array.from(a));
  };
  const before = tf.memory().numTensors;
  setAliasingCopies(false);
  const stock = await grads();
  setAliasingCopies(true);
  const x = tf.tensor1d([1, 2, 3]);
  const c = x.clone();
  const f = tf.cast(x, "float32");
  assert(dataIdOf(c) === dataIdOf(x) && dataIdOf(f) === dataIdOf(x), "no aliasing");
  const i = tf.cast(x, "int32");
  assert(dataIdOf(i) !== dataIdOf(x));
  x.dispose();
  assertEquals(Array.from(await c.data()), [1, 2, 3]);
  assertEquals(Array.from(await f.data()), [1, 2, 3]);
  assertEquals(Array.from(await i.data()), [1, 2, 3]);
  assertEquals(i.dtype, "int32");
  tf.dispose([c, f, i]);
  const aliased = await grads();
  assertEquals(aliased, stock);
  assertEquals(tf.memory().numTensors, before, "tensor leak");
});

Deno.test({
  name: "native BatchMatMul: small products on one BLAS thread give the same results" + IGNORE_WHY,
  ignore: !HAVE_BLAS,
  fn: async () => {
    await initBackend("wasm", { blasThreads: 2 });
    const rng = new Rng(9);
    const a = tf.tensor(randomArray(rng, 300 * 200), [300, 200]);
    const b = tf.tensor(randomArray(rng, 200 * 100), [200, 100]);
    const results: Float32Array[] = [];
    // 300·200·100 = 6e6 multiply-adds: below the default threshold, above 0.
    for (const smallProductMacs of [undefined, 0, null]) {
      const status = configureNativeMatMul("wasm", { threads: 2, smallProductMacs });
      assertEquals(status.threads, 2);
      const y = tf.matMul(a, b);
      results.push((await y.data()) as Float32Array);
      y.dispose();
    }
    assert(SMALL_PRODUCT_MACS > 300 * 200 * 100);
    assertClose(results[1], results[0], "one thread vs all");
    assertClose(results[2], results[0], "null threshold vs default");
    tf.dispose([a, b]);
    await initBackend("wasm");
  },
});

Deno.test("--blas refuses, before dlopen, a file that does not export cblas_sgemm", async () => {
  await withTempDir("treelora-blas-", async (dir) => {
    const fake = `${dir}/libfake.so`;
    await Deno.writeFile(fake, tinyElf([{ name: "sgemm_", defined: true }]));
    assertEquals(
      blasFileRefusal(fake, "linux"),
      `${fake} does not export cblas_sgemm: not a BLAS library, not loaded`,
    );
    const real = `${dir}/libok.so`;
    await Deno.writeFile(real, tinyElf([{ name: "cblas_sgemm", defined: true }]));
    assertEquals(blasFileRefusal(real, "linux"), null);
    const config = new URL("../deno.json", import.meta.url).pathname;
    assertStringIncludes(blasFileRefusal(config, "linux")!, "is not an ELF shared object");
    const libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    if (Deno.build.os === "linux" && (await Deno.stat(libc).catch(() => null))) {
      assertStringIncludes(blasFileRefusal(libc, "linux")!, "does not export cblas_sgemm");
      const info = await initBackend("wasm", { blas: libc });
      assert(!info.blas.enabled);
      assertStringIncludes(info.blas.note, "does not export cblas_sgemm");
      await initBackend("wasm");
    }
  });
});

Deno.test("the tasks' --allow-ffi lists are exactly BLAS_DIRS (linux and darwin); auto tries full paths", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const expected = [...new Set([...BLAS_DIRS.linux, ...BLAS_DIRS.darwin])].join(",");
  for (
    const task of [
      "exp:split-cifar",
      "exp:treelora-vit",
      "exp:real-images",
      "exp:hide-lora-diagnosis",
      "exp:trace",
      "exp:olora-table10",
      "rerun",
      "bench",
    ]
  ) {
    const ffi = (config.tasks[task] as string).split(" ").filter((a) =>
      a.startsWith("--allow-ffi")
    );
    assertEquals(ffi, [`--allow-ffi=${expected}`], task);
  }
  for (const path of blasCandidates("linux")) {
    assert(BLAS_DIRS.linux.some((d) => path.startsWith(d + "/")), path);
  }
  assertEquals(blasCandidates("linux")[0], "/usr/lib/x86_64-linux-gnu/libopenblas.so.0");
});
