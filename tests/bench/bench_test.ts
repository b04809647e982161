import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { median, ratio, stepTable, summarizeRows } from "../../experiments/bench/report.ts";
import {
  compareParamCounts,
  type ParamCounts,
  shapesFromFlags,
  specKey,
  standardSpecs,
} from "../../experiments/bench/specs.ts";
import { tapeSavedBytes, timeTfjsSteps } from "../../experiments/bench/tfjs_steps.ts";
import * as tf from "@tensorflow/tfjs";
import { parseTfjsPeerOutput, peakRssMiB, runTfjsPeer } from "../../experiments/bench/tfjs_peer.ts";
import { torchOpFamily } from "../../experiments/bench/torch_profile.ts";
import {
  parseTorchPeerOutput,
  parseTorchProbe,
  probeTorch,
  runTorchPeer,
} from "../../experiments/bench/torch_peer.ts";

const OPT = { lr: 1e-3, beta1: 0.9, beta2: 0.999, clipNorm: 1 };
const LORA = { rank: 4, alpha: 8, dropout: 0.1 };
const OPTIONS = {
  vitLora: LORA,
  vitBatch: 2,
  numClasses: 10,
  vitOptimizer: OPT,
  lmLora: LORA,
  lmBatch: 2,
  lmSeqLength: 8,
  lmOptimizer: { ...OPT, beta2: 0.95 },
};

const RUNTIME = {
  torch: "1.13.0a0",
  python: "3.11.2",
  executable: "/usr/bin/python3",
  threads: 1,
  interopThreads: 1,
  blas: { buildBlas: "generic", openblasThreads: 2 },
};

const COUNTS: ParamCounts = { base: 100, lora: 16, head: 22, total: 138, trainable: 38 };

Deno.test("median of odd and even lists; an empty list is an error", () => {
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 3, 2]), 2.5);
  assertEquals(median([7]), 7);
  assertThrows(() => median([]), Error, "empty");
});

Deno.test("ratio rounds to 2 decimals and is null without a positive denominator", () => {
  assertEquals(ratio(150, 100), 1.5);
  assertEquals(ratio(100, 300), 0.33);
  assertEquals(ratio(1, null), null);
  assertEquals(ratio(null, 1), null);
  assertEquals(ratio(1, 0), null);
});

Deno.test("compareParamCounts lists the roles that differ", () => {
  assertEquals(compareParamCounts(COUNTS, { ...COUNTS }), []);
  assertEquals(compareParamCounts(COUNTS, { ...COUNTS, lora: 32, total: 154 }), [
    "lora: tfjs 16, torch 32",
    "total: tfjs 138, torch 154",
  ]);
});

Deno.test("parseTorchPeerOutput reads the last JSON line and checks it", () => {
  const good = {
    ok: true,
    ...RUNTIME,
    params: COUNTS,
    msPerStep: [20.5, 19.5, 21],
    medianMs: 20.5,
    samplesPerSecond: 1561,
    rssAfterBuildMiB: 240,
    peakRssMiB: 290.5,
    loss: { first: 4.6, last: 4.1 },
  };
  const r = parseTorchPeerOutput(`some warning\n{not json\n${JSON.stringify(good)}\n`);
  assertEquals(r.params, COUNTS);
  assertEquals(r.msPerStep, [20.5, 19.5, 21]);
  assertEquals(r.torch, "1.13.0a0");
  assertEquals(r.blas.openblasThreads, 2);
  assertThrows(
    () => parseTorchPeerOutput(JSON.stringify({ ok: false, error: "cannot import torch" })),
    Error,
    "cannot import torch",
  );
  assertThrows(
    () => parseTorchPeerOutput(JSON.stringify({ ...good, params: { ...COUNTS, lora: 1.5 } })),
    Error,
    "params.lora",
  );
  assertThrows(
    () => parseTorchPeerOutput(JSON.stringify({ ...good, msPerStep: [] })),
    Error,
    "msPerStep",
  );
  assertThrows(() => parseTorchPeerOutput("Traceback (most recent call last)"), Error, "no JSON");
  const { torch: _, ...noTorch } = good;
  assertThrows(() => parseTorchPeerOutput(JSON.stringify(noTorch)), Error, '"torch"');
});

Deno.test("parseTorchProbe reads runtime info and the RSS after import", () => {
  const r = parseTorchProbe(JSON.stringify({ ok: true, ...RUNTIME, rssAfterImportMiB: 228.5 }));
  assertEquals(r.threads, 1);
  assertEquals(r.rssAfterImportMiB, 228.5);
  assertThrows(() => parseTorchProbe('{"ok": false, "error": "no torch"}'), Error, "no torch");
});

Deno.test("standardSpecs crosses configurations with modes and applies the track's settings", () => {
  const specs = standardSpecs(["micro", "byte-micro"], ["lora", "full"], OPTIONS);
  assertEquals(specs.map(specKey), [
    "vit micro lora",
    "vit micro full",
    "lm byte-micro lora",
    "lm byte-micro full",
  ]);
  const vit = specs[0];
  if (vit.model !== "vit") throw new Error("expected a ViT spec first");
  assertEquals(vit.config.lora, LORA);
  assertEquals(vit.numClasses, 10);
  const lm = specs[2];
  if (lm.model !== "lm") throw new Error("expected an LM spec third");
  assertEquals(lm.seqLength, 8);
  assertEquals(lm.beta2, 0.95);
  assertThrows(
    () => standardSpecs(["huge"], ["lora"], OPTIONS),
    Error,
    'unknown configuration "huge"',
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => standardSpecs(["micro"], ["half" as any], OPTIONS),
    Error,
    'unknown mode "half"',
  );
});

Deno.test("summarizeRows takes medians over rounds and ratios against PyTorch; stepTable renders them", () => {
  const key = "vit tiny lora";
  const rows = summarizeRows([key, "lm x full"], ["wasm", "wasm+blas"], [
    { key, variant: "wasm", roundMedians: [300, 330, 310], peakMiB: 120.04 },
    { key, variant: "wasm+blas", roundMedians: [150, 140] },
    { key, variant: "pytorch", roundMedians: [100, 110, 90], peakMiB: 300 },
  ], {
    samples: { [key]: 32, "lm x full": 8 },
    params: { [key]: COUNTS },
    parity: { [key]: [] },
  });
  assertEquals(rows[0].ms, { wasm: 310, "wasm+blas": 145, pytorch: 100 });
  assertEquals(rows[0].ratioVsTorch, { wasm: 3.1, "wasm+blas": 1.45 });
  assertEquals(rows[0].samplesPerSecond.pytorch, 320);
  assertEquals(rows[0].peakMiB.wasm, 120);
  assertEquals(rows[1].ms.wasm, null);
  assertEquals(rows[1].ratioVsTorch.wasm, null);
  assertEquals(rows[1].parity, null);

  const table = stepTable(rows, ["wasm", "wasm+blas"], { withTorch: true }).split("\n");
  assertEquals(table.length, 4);
  assertStringIncludes(table[0], "| wasm / PyTorch | wasm+blas / PyTorch |");
  assertStringIncludes(table[2], "| vit tiny lora | 38 / 138 | 310 (103.2) | 145 (220.7) |");
  assertStringIncludes(table[2], "| 100 (320) | 3.1× | 1.45× |");
  assertStringIncludes(table[2], "| equal |");
  assertStringIncludes(table[3], "| lm x full | – | – | – | – |");

  const saved = summarizeRows([key], ["wasm"], [
    { key, variant: "wasm", roundMedians: [300], savedMiB: 12.34 },
    { key, variant: "pytorch", roundMedians: [100], savedMiB: 5 },
  ], { samples: { [key]: 32 }, parity: { [key]: [] } });
  const savedTable = stepTable(saved, ["wasm"], { withTorch: true }).split("\n");
  assertStringIncludes(
    savedTable[0],
    "| wasm saved for backward MiB | PyTorch saved for backward MiB | param parity |",
  );
  assertStringIncludes(savedTable[2], "| 12.3 | 5 | equal |");
  assert(!table[0].includes("saved for backward"));

  const noTorch = stepTable(rows, ["wasm"], { withTorch: false });
  assert(!noTorch.includes("PyTorch"));
  const differs = summarizeRows([key], ["wasm"], [], {
    samples: { [key]: 1 },
    parity: { [key]: ["lora: tfjs 1, torch 2"] },
  });
  assertStringIncludes(
    stepTable(differs, ["wasm"], { withTorch: true }),
    "DIFFERS: lora: tfjs 1, torch 2",
  );
});

Deno.test("stepTable: a variant beside its -unfused twin gets the fused / unfused ratio of the medians", () => {
  const key = "lm byte-tiny lora";
  const rows = summarizeRows([key], ["wasm+blas", "wasm+blas-unfused"], [
    { key, variant: "wasm+blas", roundMedians: [80, 84, 82] },
    { key, variant: "wasm+blas-unfused", roundMedians: [100, 104, 102] },
  ], { samples: { [key]: 8 } });
  const table = stepTable(rows, ["wasm+blas", "wasm+blas-unfused"], { withTorch: false })
    .split("\n");
  assertStringIncludes(table[0], "| wasm+blas / wasm+blas-unfused |");
  // 82 / 102 = 0.804
  assertStringIncludes(table[2], "| 0.80× |");
  assert(!stepTable(rows, ["wasm+blas"], { withTorch: false }).includes("-unfused"));
});

Deno.test("timeTfjsSteps trains the micro models in both modes without leaking tensors", async () => {
  await initBackend("cpu");
  for (const spec of standardSpecs(["micro", "byte-micro"], ["lora", "full"], OPTIONS)) {
    const t = await timeTfjsSteps(spec, { steps: 2, warmup: 1, profile: true });
    assertEquals(t.msPerStep.length, 2, specKey(spec));
    assertEquals(t.leakedTensors, 0, specKey(spec));
    assert(Number.isFinite(t.loss.first) && Number.isFinite(t.loss.last), specKey(spec));
    assert((t.peakTensorBytes ?? 0) > 0, specKey(spec));
    assert((t.savedForBackwardBytes ?? 0) > 0, specKey(spec));
    const p = t.params;
    assertEquals(p.total, p.base + p.lora + p.head);
    assertEquals(p.trainable, spec.mode === "lora" ? p.lora + p.head : p.base + p.head);
    assertEquals(p.head, spec.model === "vit" ? 32 * 10 + 10 : 0);
  }
});

Deno.test("tapeSavedBytes counts each saved buffer once and leaves the excluded weights out", async () => {
  await initBackend("cpu");
  const x = tf.variable(tf.tensor1d([0.1, 0.2, 0.3, 0.4, 0.5]));
  const seen: number[] = [];
  const { value, grads } = tf.variableGrads(() => {
    // Multiply saves both inputs (x twice: one 20-byte buffer); Exp saves its output e and Sum
    // its input e (one 20-byte buffer).
    const e = tf.exp(tf.mul(x, x));
    const loss = tf.sum(e) as tf.Scalar;
    seen.push(tapeSavedBytes(new Set()), tapeSavedBytes(new Set([x.dataId])));
    return loss;
  });
  assertEquals(seen, [40, 20]);
  assertEquals(tapeSavedBytes(new Set()), 0); // no gradient computation running
  value.dispose();
  tf.dispose(grads);
  x.dispose();
});

Deno.test("parseTorchPeerOutput reads a profile and refuses a malformed one", () => {
  const good = {
    ok: true,
    ...RUNTIME,
    params: COUNTS,
    msPerStep: [5],
    medianMs: 5,
    samplesPerSecond: 100,
    rssAfterBuildMiB: 200,
    peakRssMiB: 210,
    loss: { first: 1, last: 0.9 },
  };
  const profile = {
    steps: 2,
    ops: [{ name: "aten::mm", calls: 8, ms: 12 }, { name: "MmBackward0", calls: 8, ms: 0.5 }],
  };
  assertEquals(parseTorchPeerOutput(JSON.stringify({ ...good, profile })).profile, profile);
  assertEquals(parseTorchPeerOutput(JSON.stringify(good)).profile, undefined);
  assertThrows(
    () => parseTorchPeerOutput(JSON.stringify({ ...good, profile: { steps: 0, ops: [] } })),
    Error,
    "profile.steps",
  );
  assertThrows(
    () =>
      parseTorchPeerOutput(
        JSON.stringify({ ...good, profile: { steps: 1, ops: [{ name: "aten::mm", ms: -1 }] } }),
      ),
    Error,
    "profile.ops[0]",
  );
});

Deno.test("the PyTorch peer builds models with the harness's parameter counts", async () => {
  const python = Deno.env.get("TREELORA_PYTHON") ?? "/usr/bin/python3";
  const probe = await probeTorch(python);
  if (!probe.ok) {
    console.log(`skipped: no PyTorch peer (${probe.reason})`);
    return;
  }
  await initBackend("cpu");
  for (const spec of standardSpecs(["micro", "byte-micro"], ["lora", "full"], OPTIONS)) {
    const tfjs = await timeTfjsSteps(spec, { steps: 1, warmup: 0 });
    const torch = await runTorchPeer(python, spec, { steps: 1, warmup: 0, profileSteps: 1 });
    assertEquals(compareParamCounts(tfjs.params, torch.params), [], specKey(spec));
    assert(Number.isFinite(torch.loss.first), specKey(spec));
    assert((torch.savedForBackwardMiB ?? 0) > 0, specKey(spec));
    // the profiled step: matrix products and autograd's engine are among its rows
    const families = new Set(torch.profile?.ops.map((o) => torchOpFamily(o.name)));
    assert(families.has("matmul") && families.has("framework"), specKey(spec));
  }
});

Deno.test("shapesFromFlags: the defaults, a given value, and a non-positive one refused", () => {
  assertEquals(shapesFromFlags({}), { vitBatch: 32, lmBatch: 8, lmSeqLength: 128 });
  assertEquals(shapesFromFlags({ "lm-seq-length": 64 }).lmSeqLength, 64);
  assertThrows(
    () => shapesFromFlags({ "batch-size": 0 }),
    Error,
    "--batch-size must be a positive integer",
  );
});

Deno.test("the tfjs peer's output line is read and checked; this process's peak RSS is a positive number on Linux", async () => {
  const line =
    '{"deno":"2.9.6","peakRssMiB":210.5,"rssAfterInitMiB":90,"msPerStep":[5.5,6],"leakedTensors":0}';
  const r = parseTfjsPeerOutput(`some log\n${line}\n`);
  assertEquals([r.peakRssMiB, r.rssAfterInitMiB, r.msPerStep], [210.5, 90, [5.5, 6]]);
  assertThrows(() => parseTfjsPeerOutput("no json"), Error, "no JSON line");
  assertThrows(
    () => parseTfjsPeerOutput(line.replace('"peakRssMiB":210.5', '"peakRssMiB":null')),
    Error,
    "peakRssMiB is not a number",
  );
  if (Deno.build.os === "linux") {
    const rss = await peakRssMiB();
    assert(rss !== null && rss > 10 && rss >= Deno.memoryUsage().rss / 2 ** 20 - 1, `${rss}`);
    // One micro job in a peer process: its peak is above its start-up RSS, nothing leaks.
    const spec = standardSpecs(["micro"], ["lora"], OPTIONS)[0];
    const peer = await runTfjsPeer(spec, { variant: "cpu", steps: 1, warmup: 0, ffi: "/usr/lib" });
    assertEquals(peer.deno, Deno.version.deno);
    assert(
      peer.peakRssMiB >= peer.rssAfterInitMiB && peer.rssAfterInitMiB > 10,
      JSON.stringify(peer),
    );
    assertEquals([peer.msPerStep.length, peer.leakedTensors], [1, 0]);
  }
});
