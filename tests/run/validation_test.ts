/**
 * Flag validation (issue 18, classes 7, 9, 11, 12): every numeric flag has a range checked
 * before any work starts, seeds are integers in the RNG's range, ignored or contradictory
 * values are errors that say what was expected, and method options are validated before any
 * data is loaded or a backbone is pre-trained.
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { SPEC as VIT_SPEC } from "../../experiments/split_cifar.ts";
import { SPEC as LM_SPEC } from "../../experiments/trace.ts";
import { parseCommand } from "../../lib/flags.ts";
import { runCli } from "../../lib/run/cli.ts";
import { LM_TRACK } from "../../lib/tracks/lm_trace.ts";
import { VIT_TRACK } from "../../lib/tracks/vit_class_incremental.ts";
import { specFromArgs } from "../helpers.ts";

function vitError(args: string[]): string {
  return assertThrows(() => specFromArgs(VIT_SPEC, args, VIT_TRACK), Error).message;
}

function lmError(args: string[]): string {
  return assertThrows(() => specFromArgs(LM_SPEC, args, LM_TRACK), Error).message;
}

Deno.test("runaway counts are refused: epochs, batch, steps, tokens, pre-training steps", () => {
  assertEquals(
    vitError(["--epochs", "1e300"]),
    "--epochs must be an integer from 1 to 1000, got 1e+300",
  );
  assertEquals(
    vitError(["--epochs", "1001"]),
    "--epochs must be an integer from 1 to 1000, got 1001",
  );
  assertEquals(
    vitError(["--reduced-epochs", "5000"]),
    "--reduced-epochs must be an integer from 1 to 1000, got 5000",
  );
  assertEquals(
    vitError(["--batch-size", "1000000"]),
    "--batch-size must be an integer from 1 to 65536, got 1000000",
  );
  assertEquals(
    vitError(["--max-steps-per-epoch", "2.5"]),
    "--max-steps-per-epoch must be an integer from 1 to 10000000, got 2.5",
  );
  assertEquals(
    vitError(["--pretrain-steps", "1e9"]),
    "--pretrain-steps must be an integer from 1 to 1000000, got 1000000000",
  );
  assertEquals(
    lmError(["--max-new-tokens", "1e9"]),
    "--max-new-tokens must be an integer from 1 to 4096, got 1000000000",
  );
  assertEquals(
    lmError(["--max-train", "0"]),
    "--max-train must be an integer from 1 to 10000000, got 0",
  );
  // The boundaries themselves are accepted.
  assertEquals(specFromArgs(VIT_SPEC, ["--epochs", "1000"], VIT_TRACK).train.epochs, 1000);
  assertEquals(
    specFromArgs(LM_SPEC, ["--max-new-tokens", "4096"], LM_TRACK).train.maxNewTokens,
    4096,
  );
});

Deno.test("learning rate, clip, LoRA and temperature ranges", () => {
  assertEquals(vitError(["--lr", "0"]), "--lr must be a number above 0 up to 1, got 0");
  assertEquals(vitError(["--lr=-0.001"]), "--lr must be a number above 0 up to 1, got -0.001");
  assertEquals(vitError(["--lr", "1e6"]), "--lr must be a number above 0 up to 1, got 1000000");
  assertEquals(specFromArgs(VIT_SPEC, ["--lr", "1"], VIT_TRACK).train.lr, 1);
  assertEquals(vitError(["--clip=-1"]), "--clip must be a number from 0 up to 1000000, got -1");
  assertEquals(
    vitError(["--lora-dropout", "1"]),
    "--lora-dropout must be a number from 0 and below 1, got 1",
  );
  assertEquals(
    vitError(["--lora-alpha", "0"]),
    "--lora-alpha must be a number above 0 up to 10000, got 0",
  );
  assertEquals(
    lmError(["--temperature=-1"]),
    "--temperature must be a number from 0 up to 100, got -1",
  );
});

Deno.test("seeds are integers in [0, 2^32); a seed that would alias or repeat is refused", () => {
  assertEquals(
    vitError(["--seed", "0.5"]),
    "--seed must be an integer from 0 to 4294967295, got 0.5",
  );
  assertEquals(
    vitError(["--seed=-1"]),
    "--seed must be an integer from 0 to 4294967295, got -1",
  );
  assertEquals(
    vitError(["--seeds", "0,4294967296"]),
    "--seeds must be an integer from 0 to 4294967295, got 4294967296",
  );
  assertEquals(vitError(["--seeds", "0,1,0"]), "--seeds lists a seed twice: 0,1,0");
  assertEquals(
    vitError(["--data-seed", "4294967296"]),
    "--data-seed must be an integer from 0 to 4294967295, got 4294967296",
  );
  assertEquals(
    vitError(["--order-seed", "1.5"]),
    "--order-seed must be an integer or 'natural', got 1.5",
  );
  assertEquals(specFromArgs(VIT_SPEC, ["--seeds", "0,4294967295"], VIT_TRACK).seedList, [
    0,
    4294967295,
  ]);
});

Deno.test("ignored values are errors: non-object method options, extra epochs, synthetic sizes with --data-dir", () => {
  assertStringIncludes(
    vitError(["--method-options", '{"treelora": 5}']),
    `--method-options: the options of "treelora" must be an object`,
  );
  assertStringIncludes(vitError(["--method-options", "[1]"]), "must be a JSON object of objects");
  assertStringIncludes(vitError(["--method-options", "null"]), "must be a JSON object of objects");
  const tasks = VIT_SPEC.data.numTasks;
  assertEquals(
    vitError(["--epochs", Array(tasks + 1).fill("1").join(",")]),
    `--epochs lists ${tasks + 1} numbers; give one, or one per task (${tasks})`,
  );
  assertEquals(
    vitError(["--data-dir", "/tmp/x", "--train-per-class", "4"]),
    "--train-per-class sizes the synthetic data set; with --data-dir the files decide the sizes: drop one",
  );
});

Deno.test("--out is one safe folder name", () => {
  for (const bad of ["../escape", "a/b", "..", ".hidden", "a\nb", "x".repeat(201), "/abs"]) {
    assertStringIncludes(vitError(["--out", bad]), "--out must be one folder name");
  }
  assertEquals(specFromArgs(VIT_SPEC, ["--out", "run-1.a_b"], VIT_TRACK).output.runId, "run-1.a_b");
});

Deno.test("report's --results-dir X works like --results-dir=X (parseCommand)", () => {
  const specs = {
    "results-dir": { type: "string" as const, help: "root" },
    "no-png": { type: "boolean" as const, help: "svg only" },
  };
  assertEquals(parseCommand(["--results-dir", "out", "--no-png", "out/a"], specs), {
    flags: { "results-dir": "out", "no-png": true },
    positionals: ["out/a"],
  });
  assertEquals(parseCommand(["out/a", "--results-dir=out"], specs), {
    flags: { "results-dir": "out", "no-png": false },
    positionals: ["out/a"],
  });
});

Deno.test("an unknown method option fails before any data is read or a backbone pre-trained", async () => {
  const root = await Deno.makeTempDir({ prefix: "treelora-validate-" });
  try {
    const results = join(root, "results");
    const cache = join(root, "cache");
    const code = await runCli([
      "--methods",
      "treelora",
      "--method-options",
      '{"treelora": {"lambdaa": 0.3}}',
      "--results-dir",
      results,
      "--cache-dir",
      cache,
      "--quiet",
    ], { spec: VIT_SPEC, track: VIT_TRACK });
    assertEquals(code, 1);
    const made: string[] = [];
    for await (const e of Deno.readDir(root)) made.push(e.name);
    assertEquals(made, [], "nothing written: no data generated, no backbone cached, no run folder");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runCli exits 2 on a bad flag and names it", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  try {
    assertEquals(await runCli(["--lr=-1"], { spec: VIT_SPEC, track: VIT_TRACK }), 2);
  } finally {
    console.error = original;
  }
  assertEquals(errors, ["error: --lr must be a number above 0 up to 1, got -1"]);
  assert(true);
});
