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
  assertThrows(() => createMethod("ewc", { track: "vit" }), Error, 'unknown method "ewc"');
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
