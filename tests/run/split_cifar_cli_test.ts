import { assert, assertEquals, assertThrows } from "@std/assert";
import { SPEC } from "../../experiments/split_cifar.ts";
import { resolveLoraBlocks, VIT_TRACK } from "../../lib/tracks/vit_class_incremental.ts";
import { specFromArgs } from "../helpers.ts";

const apply = (args: string[]) => specFromArgs(SPEC, args, VIT_TRACK);

Deno.test("flags map onto the spec; the base spec is not mutated", () => {
  const s = apply([
    "--methods",
    "seqlora,hide-treelora-reduced-epochs",
    "--tasks",
    "2",
    "--epochs",
    "2,1",
    "--order-seed",
    "natural",
    "--seed",
    "7",
    "--init-seed",
    "9",
    "--lora-blocks",
    "0,1",
    "--method-options",
    '{"hide-treelora-reduced-epochs":{"lambda":0.3}}',
  ]);
  assertEquals(s.methods, [
    { name: "seqlora" },
    {
      name: "hide-treelora",
      label: "hide-treelora-reduced-epochs",
      epochs: 2,
      options: { lambda: 0.3 },
    },
  ]);
  assertEquals(s.train.epochs, [2, 1]);
  assertEquals(s.data.orderSeed, null);
  assertEquals(s.seed, 7);
  assertEquals(s.seeds, { data: 7, init: 9, method: 7 });
  assertEquals(s.backbone.loraBlocks, [0, 1]);
  assertEquals(SPEC.methods.length, 4);
  assertEquals(SPEC.methods[3], {
    name: "hide-treelora",
    label: "hide-treelora-reduced-epochs",
    epochs: 2,
  });
  // The paper's ViT LoRA geometry: k and v of blocks 0–4 on a 6-block backbone.
  assertEquals(
    [SPEC.backbone.preset, SPEC.backbone.loraBlocks, SPEC.backbone.loraTargets],
    ["tiny6-p8", "first:5", ["k", "v"]],
  );
  assertEquals(apply(["--lora-targets", "q,v"]).backbone.loraTargets, ["q", "v"]);
  assertEquals(apply(["--lora-blocks", "first:3"]).backbone.loraBlocks, "first:3");
  assertEquals(resolveLoraBlocks("first:5", 6), [0, 1, 2, 3, 4]);
  assertEquals(resolveLoraBlocks("first:5", 2), [0, 1]);
  assertThrows(() => resolveLoraBlocks("first:0", 4), Error, "first:N");
  assertEquals(apply(["--curve-every", "10"]).train.curveEvery, 10);
  assertEquals(apply(["--curve-every", "0"]).train.curveEvery, 0);
  assertEquals(apply(["--epochs", "3"]).train.epochs, 3);
  // 'all' keeps the spec's four entries and adds every other registered method once.
  const all = apply(["--methods", "all"]).methods.map((m) => m.label ?? m.name);
  assertEquals(all.slice(0, 4), [
    "seqlora",
    "hide-lora",
    "hide-treelora",
    "hide-treelora-reduced-epochs",
  ]);
  assert(all.includes("treelora"), "the plain shared-adapter TreeLoRA stays available");
  assertEquals(new Set(all).size, all.length);
});

Deno.test("bad flag values are errors that name the flag", () => {
  assertThrows(
    () => apply(["--epochs", "0"]),
    Error,
    "--epochs must be an integer from 1 to 1000, got 0",
  );
  assertThrows(() => apply(["--backend", "gpu"]), Error, "--backend must be one of");
  assertThrows(() => apply(["--order-seed", "x"]), Error, "--order-seed");
  assertThrows(() => apply(["--method-options", "{"]), Error, "--method-options is not valid JSON");
  assertThrows(() => apply(["--method-options", '{"nope":{}}']), Error, 'names "nope"');
  assertThrows(() => apply(["--lora-blocks", "a"]), Error, "--lora-blocks");
  assertThrows(() => apply(["--lora-targets", "q,o"]), Error, "--lora-targets");
  assertThrows(() => apply(["--lora-targets", "k,k"]), Error, "twice");
  assertThrows(() => apply(["--seeds", "0,0"]), Error, "lists a seed twice");
  // One runner, one rule on both tracks: a per-task list has one number or one per task.
  assertThrows(
    () => apply(["--epochs", "2,1"]),
    Error,
    "--epochs lists 2 numbers; give one, or one per task (10)",
  );
  assertThrows(
    () => apply(["--reduced-epochs", "1,1,1"]),
    Error,
    "--reduced-epochs lists 3 numbers; give one, or one per task (10)",
  );
  assertEquals(apply(["--reduced-epochs", "1"]).methods[3].epochs, 1);
  assertThrows(() => apply(["--seeds", "0,1", "--data-seed", "3"]), Error, "cannot be combined");
  assertThrows(() => apply(["--seeds", "0,1", "--seed", "3"]), Error, "cannot be combined");
  assertEquals(apply(["--seeds", "0,1,2"]).seedList, [0, 1, 2]);
});
