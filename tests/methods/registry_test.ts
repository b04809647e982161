import { assertEquals, assertThrows } from "@std/assert";
import { createMethod, methodNames } from "../../lib/methods/registry.ts";

Deno.test("registry builds methods by name and rejects unknown names and options", () => {
  assertEquals(methodNames().includes("seqlora"), true);
  assertEquals(methodNames().includes("treelora"), true);
  assertEquals(createMethod("seqlora", { track: "vit" }).name, "seqlora");
  const t = createMethod("treelora", { options: { mode: "paper" }, track: "lm" });
  assertEquals(t.options().lambda, 0.5);
  assertEquals(t.options().selection, "paper_lcb");
  assertEquals(createMethod("treelora", { track: "vit" }).options().lambda, 0.1);
  assertThrows(() => createMethod("no-such", { track: "vit" }), Error, 'unknown method "no-such"');
  assertThrows(
    () => createMethod("seqlora", { options: { lr: 1 }, track: "vit" }),
    Error,
    "takes no options",
  );
  assertThrows(
    () => createMethod("treelora", { options: { lamda: 1 }, track: "vit" }),
    Error,
    "lamda",
  );
});

Deno.test("registry builds the LoRA-family baselines with their defaults", () => {
  for (const name of ["ogd", "o-lora", "inflora", "hide-lora"]) {
    assertEquals(methodNames().includes(name), true, name);
  }
  assertEquals(createMethod("ogd", { track: "vit" }).options(), { maxDirectionsPerTask: null });
  assertEquals(createMethod("o-lora", { track: "lm" }).options(), { lambda1: 0.5, lambda2: 0 });
  assertEquals(createMethod("inflora", { track: "vit" }).options().lamb, 0.95);
  assertEquals(createMethod("hide-lora", { track: "lm" }).options().temperature, 0.8);
  assertEquals(createMethod("hide-lora", { track: "vit" }).options().tiiRule, "head");
  assertEquals(methodNames({ track: "vit" }).includes("hide-lora"), true);
  assertThrows(
    () => createMethod("o-lora", { options: { lamda1: 1 }, track: "vit" }),
    Error,
    "lamda1",
  );
  assertThrows(
    () => createMethod("ogd", { options: { maxDirectionsPerTask: 0 }, track: "lm" }),
    Error,
  );
});

Deno.test("registry builds the classic baselines with their track restrictions", () => {
  for (const name of ["ewc", "gem", "lwf", "joint", "l2p", "dualprompt"]) {
    assertEquals(methodNames({ track: "vit" }).includes(name), true, name);
    assertEquals(methodNames({ track: "lm" }).includes(name), true, name);
  }
  assertEquals(createMethod("gem", { track: "vit" }).options().margin, 0.05);
  assertEquals(createMethod("gem", { track: "lm" }).options().margin, 0.5);
  assertEquals(createMethod("l2p", { track: "vit" }).options().poolSize, 30);
  assertEquals(createMethod("l2p", { track: "lm" }).options().poolSize, 10);
  assertEquals(createMethod("dualprompt", { track: "lm" }).options().taskLength, 3);
  assertEquals(methodNames({ track: "vit" }).includes("fix"), false);
  assertEquals(methodNames({ track: "lm" }).includes("fix"), true);
  assertEquals(createMethod("ewc", { track: "vit" }).options(), {
    lambda: 50,
    params: "lora",
    fisherFrom: "task",
  });
  assertEquals(createMethod("ewc", { track: "lm" }).options().lambda, 400);
  assertEquals(createMethod("lwf", { track: "lm" }).options(), { temperature: 2, alpha: 1 });
  assertEquals(createMethod("joint", { track: "vit" }).replayAll, true);
  assertEquals(createMethod("fix", { track: "lm" }).options().shots, 6);
  assertThrows(() => createMethod("ewc", { options: { lamda: 1 }, track: "vit" }), Error, "lamda");
});
