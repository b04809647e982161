import { assertEquals, assertThrows } from "@std/assert";
import {
  resolveTreeLoraOptions,
  TREELORA_OPTION_KEYS,
  type TreeLoraOptions,
} from "../../../lib/methods/treelora/options.ts";

Deno.test("code mode defaults reproduce the released code, quirk for quirk", () => {
  const o = resolveTreeLoraOptions({}, { track: "lm" });
  const expected: TreeLoraOptions = {
    mode: "code",
    lambda: 0.5,
    signatureSource: "lora_a_values",
    accumulatorScale: "modules",
    split: "dot_lower_median",
    useDifferences: true,
    selection: "code_softmax",
    fixShift: false,
    fixSign: false,
    banditPrefersSimilar: false,
    treeBias: true,
    resetPerEpoch: true,
    rampPerEpoch: true,
    regularizer: "code_inner_product",
    delta: 0,
    gamma: 1,
    deltaScale: "absolute",
    penaltyUpdate: "loss",
    treeUpdate: "rebuild",
    storageBudget: 0,
    levels: "site",
  };
  assertEquals(o, expected);
  assertEquals(Object.keys(o).sort(), [...TREELORA_OPTION_KEYS].sort());
  assertEquals(resolveTreeLoraOptions({}, { track: "vit" }).lambda, 0.1);
});

Deno.test("paper mode defaults follow the paper", () => {
  const o = resolveTreeLoraOptions({ mode: "paper" }, { track: "vit" });
  assertEquals(o, {
    mode: "paper",
    lambda: 0.1,
    signatureSource: "lora_a_grads",
    accumulatorScale: "one",
    split: "l1_lower_median",
    useDifferences: false,
    selection: "paper_lcb",
    fixShift: true,
    fixSign: true,
    banditPrefersSimilar: true,
    treeBias: false,
    resetPerEpoch: false,
    rampPerEpoch: false,
    regularizer: "paper_l1",
    delta: 1,
    gamma: 0.5,
    deltaScale: "relative",
    penaltyUpdate: "separate",
    treeUpdate: "insert",
    storageBudget: 0,
    levels: "site",
  });
  // The Table 5 ablations in paper mode fall back to the loss update (no paper penalty).
  const plain = resolveTreeLoraOptions({ mode: "paper", regularizer: "none", selection: "none" }, {
    track: "vit",
  });
  assertEquals(plain.penaltyUpdate, "loss");
  assertThrows(
    () => resolveTreeLoraOptions({ penaltyUpdate: "separate" }, { track: "vit" }),
    Error,
    "paper_l1",
  );
  assertThrows(() => resolveTreeLoraOptions({ gamma: 1.5 }, { track: "vit" }), Error, "gamma");
  assertEquals(resolveTreeLoraOptions({ mode: "paper" }, { track: "lm" }).lambda, 0.5);
});

Deno.test("explicit values override the mode and track defaults", () => {
  const o = resolveTreeLoraOptions({ lambda: 0.3, fixSign: true, split: "l1_lower_median" }, {
    track: "lm",
  });
  assertEquals([o.lambda, o.fixSign, o.split, o.mode], [0.3, true, "l1_lower_median", "code"]);
});

Deno.test("Table 5 ablations are one option away", () => {
  const plain = resolveTreeLoraOptions({ regularizer: "none", selection: "none" }, { track: "lm" });
  assertEquals([plain.regularizer, plain.selection], ["none", "none"]);
  const random = resolveTreeLoraOptions({ selection: "random" }, { track: "lm" });
  assertEquals([random.regularizer, random.selection], ["code_inner_product", "random"]);
  const paperRandom = resolveTreeLoraOptions({ mode: "paper", selection: "random" }, {
    track: "vit",
  });
  assertEquals([paperRandom.regularizer, paperRandom.selection], ["paper_l1", "random"]);
});

Deno.test("unknown keys are rejected, all of them named", () => {
  const err = assertThrows(() =>
    resolveTreeLoraOptions({ lamda: 0.5, depth: 3, mode: "code" }, { track: "lm" })
  ) as Error;
  assertEquals(err.message.includes("lamda"), true);
  assertEquals(err.message.includes("depth"), true);
});

Deno.test("wrong types and incoherent combinations are rejected", () => {
  assertThrows(() => resolveTreeLoraOptions({ mode: "papr" }, { track: "lm" }));
  assertThrows(() => resolveTreeLoraOptions({ lambda: -1 }, { track: "lm" }));
  assertThrows(() => resolveTreeLoraOptions({ lambda: "0.5" }, { track: "lm" }));
  assertThrows(() => resolveTreeLoraOptions({ treeBias: "yes" }, { track: "lm" }));
  assertThrows(() => resolveTreeLoraOptions({ selection: "ucb" }, { track: "lm" }));
  assertThrows(() => resolveTreeLoraOptions({ delta: Number.NaN }, { track: "lm" }));
  // A penalty needs a selected task.
  assertThrows(() => resolveTreeLoraOptions({ selection: "none" }, { track: "lm" }));
  // paper_l1 is not scale-invariant: the ×M accumulator would make its target M times too large.
  assertThrows(() => resolveTreeLoraOptions({ regularizer: "paper_l1" }, { track: "lm" }));
  resolveTreeLoraOptions({ regularizer: "paper_l1", accumulatorScale: "one" }, { track: "lm" });
  assertThrows(() => resolveTreeLoraOptions({}, { track: "audio" as unknown as "lm" }));
});
