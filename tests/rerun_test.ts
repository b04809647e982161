import { assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { SPEC } from "../experiments/split_cifar.ts";
import { rerun } from "../experiments/rerun.ts";
import { readJson, writeJsonAtomic } from "../lib/io.ts";
import { runSplitCifar, type SplitCifarSpec } from "../lib/tracks/vit_class_incremental.ts";

function tinySpec(root: string): SplitCifarSpec {
  const spec = structuredClone(SPEC);
  spec.data.synthetic = { seed: 3, trainPerClass: 4, testPerClass: 2 };
  spec.data.numTasks = 2;
  spec.backbone = {
    ...spec.backbone,
    preset: "micro",
    lora: { rank: 2, alpha: 4, dropout: 0.1 },
    pretrain: { seed: 1, trainPerClass: 2, testPerClass: 1, steps: 2, batchSize: 16, lr: 1e-3 },
  };
  // HiDe's alignment and TII stages kept short (30 epochs each by default): the test is about
  // rerun reproducing every stage, not about their length.
  spec.methods = [
    { name: "seqlora" },
    {
      name: "hide-treelora",
      options: { alignEpochs: 2, tiiEpochs: 2, alignSamplesPerClass: 4, alignBatchSize: 64 },
    },
  ];
  spec.train = { ...spec.train, epochs: 1, batchSize: 16, maxStepsPerEpoch: 2, curveEvery: 1 };
  spec.backend = "cpu";
  spec.blas = "off";
  spec.output = {
    resultsDir: join(root, "results"),
    cacheDir: join(root, "cache"),
    runId: "r",
    overwrite: false,
  };
  spec.quiet = true;
  return spec;
}

Deno.test("rerun regenerates a run from its own config.json with the same numbers, and records a note", async () => {
  const root = await Deno.makeTempDir();
  const { runDir } = await runSplitCifar(tinySpec(root));
  const before = await Deno.readTextFile(join(runDir, "matrix.csv"));
  await Deno.writeTextFile(join(runDir, "matrix.csv"), "tampered\n");
  // A leftover of the old run that the new one does not write must not survive.
  await Deno.writeTextFile(join(runDir, "checkpoints", "stale.json"), "{}");
  const log = console.log;
  console.log = () => {};
  try {
    assertEquals(await rerun([runDir, "--quiet", "--note=timings under contention"]), 0);
  } finally {
    console.log = log;
  }
  assertEquals(await Deno.readTextFile(join(runDir, "matrix.csv")), before);
  await Deno.stat(join(runDir, "checkpoints")); // the new run's checkpoints
  let leftover = true;
  await Deno.stat(join(runDir, "checkpoints", "stale.json")).catch(() => (leftover = false));
  assertEquals(leftover, false);
  const config = await readJson<{ notes: string[]; spec: { output: { overwrite: boolean } } }>(
    join(runDir, "config.json"),
  );
  assertEquals(config.notes, ["added after the run: timings under contention"]);
  assertStringIncludes(
    await Deno.readTextFile(join(runDir, "REPORT.md")),
    "added after the run: timings under contention",
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("rerun never loads a BLAS library named in a results folder", async () => {
  const root = await Deno.makeTempDir();
  const dir = join(root, "results", "split-cifar", "x");
  await Deno.mkdir(dir, { recursive: true });
  const spec = { ...tinySpec(root), blas: "/tmp/evil.so" };
  await writeJsonAtomic(join(dir, "config.json"), { spec });
  const errors: string[] = [];
  const error = console.error;
  console.error = (m: string) => errors.push(m);
  try {
    assertEquals(await rerun([dir]), 1);
    assertEquals(await rerun([]), 2);
  } finally {
    console.error = error;
  }
  assertStringIncludes(errors.join("\n"), "a library path is never taken from a results folder");
  assertStringIncludes(errors.join("\n"), "give exactly one RUN_DIR");
  // A shard is refused, and so is a track rerun does not know.
  await writeJsonAtomic(join(dir, "config.json"), {
    spec: { ...tinySpec(root), shard: { index: 1, count: 2 } },
  });
  console.error = (m: string) => errors.push(m);
  try {
    assertEquals(await rerun([dir]), 1);
    await writeJsonAtomic(join(dir, "config.json"), { track: "tabular", spec: tinySpec(root) });
    assertEquals(await rerun([dir]), 1);
  } finally {
    console.error = error;
  }
  assertStringIncludes(errors.join("\n"), "is one shard of a sweep");
  assertStringIncludes(errors.join("\n"), 'names the track "tabular"');
  await Deno.remove(root, { recursive: true });
});
