import { assertEquals, assertThrows } from "@std/assert";
import { SPEC } from "../../experiments/split_cifar.ts";
import { parseFlags } from "../../lib/run/flags.ts";
import { applySplitCifarFlags, SPLIT_CIFAR_FLAGS } from "../../lib/run/split_cifar_cli.ts";

const apply = (args: string[]) => applySplitCifarFlags(SPEC, parseFlags(args, SPLIT_CIFAR_FLAGS));

Deno.test("flags map onto the spec; the base spec is not mutated", () => {
  const s = apply([
    "--methods",
    "seqlora,treelora-paper",
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
    '{"treelora-paper":{"lambda":0.3}}',
  ]);
  assertEquals(s.methods, [
    { name: "seqlora" },
    { name: "treelora", label: "treelora-paper", options: { mode: "paper", lambda: 0.3 } },
  ]);
  assertEquals(s.train.epochs, [2, 1]);
  assertEquals(s.data.orderSeed, null);
  assertEquals(s.seed, 7);
  assertEquals(s.seeds, { data: 7, init: 9, method: 7 });
  assertEquals(s.backbone.loraBlocks, [0, 1]);
  assertEquals(SPEC.methods.length, 4);
  assertEquals(SPEC.methods[2].options, { mode: "paper" });
  assertEquals(apply(["--epochs", "3"]).train.epochs, 3);
  // 'all' keeps the spec's four entries and adds every other registered method once.
  const all = apply(["--methods", "all"]).methods.map((m) => m.label ?? m.name);
  assertEquals(all.slice(0, 4), [
    "seqlora",
    "treelora",
    "treelora-paper",
    "treelora-reduced-epochs",
  ]);
  assertEquals(new Set(all).size, all.length);
});

Deno.test("bad flag values are errors that name the flag", () => {
  assertThrows(() => apply(["--epochs", "0"]), Error, "--epochs must be a positive integer");
  assertThrows(() => apply(["--backend", "gpu"]), Error, "--backend must be one of");
  assertThrows(() => apply(["--order-seed", "x"]), Error, "--order-seed");
  assertThrows(() => apply(["--method-options", "{"]), Error, "--method-options is not valid JSON");
  assertThrows(() => apply(["--method-options", '{"nope":{}}']), Error, 'names "nope"');
  assertThrows(() => apply(["--lora-blocks", "a"]), Error, "--lora-blocks");
  assertThrows(() => apply(["--seeds", "0,0"]), Error, "lists a seed twice");
  assertThrows(() => apply(["--seeds", "0,1", "--seed", "3"]), Error, "cannot be combined");
  assertEquals(apply(["--seeds", "0,1,2"]).seedList, [0, 1, 2]);
});
