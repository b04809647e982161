import { assertEquals, assertThrows } from "@std/assert";
import { type FlagSpec, parseFlags } from "../lib/flags.ts";

const SPECS: Record<string, FlagSpec> = {
  epochs: { type: "int-list", help: "epochs" },
  lr: { type: "number", help: "lr" },
  methods: { type: "string-list", help: "methods" },
  quiet: { type: "boolean", help: "quiet" },
  out: { type: "string", help: "out" },
};

Deno.test("parseFlags parses every declared type", () => {
  const v = parseFlags([
    "--epochs",
    "2,1,3",
    "--lr=0.005",
    "--methods",
    "seqlora,treelora",
    "--quiet",
    "--out",
    "x",
  ], SPECS);
  assertEquals(v, {
    epochs: [2, 1, 3],
    lr: 0.005,
    methods: ["seqlora", "treelora"],
    quiet: true,
    out: "x",
  });
});

Deno.test("parseFlags rejects unknown flags, bad numbers and missing values", () => {
  assertThrows(() => parseFlags(["--epoch", "2"], SPECS), Error, "unknown argument(s): --epoch");
  assertThrows(() => parseFlags(["--lr", "fast"], SPECS), Error, '--lr: "fast" is not a number');
  assertThrows(() => parseFlags(["--epochs", "2,x"], SPECS), Error, "--epochs");
  assertThrows(() => parseFlags(["stray"], SPECS), Error, "unknown argument(s): stray");
});
