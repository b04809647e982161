import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { importClosure, relativeImports } from "../../lib/report/import_closure.ts";

Deno.test("relativeImports reads static, re-export, side-effect and dynamic imports, not comments", () => {
  const source = [
    'import * as tf from "@tensorflow/tfjs";',
    "import {",
    "  a,",
    "  type B,",
    '} from "./a.ts";',
    'export { c } from "../c.ts";',
    'import "./side.ts";',
    'const m = await import("./dyn.ts");',
    "/**",
    ' * import { x } from "./doc_only.ts";',
    " */",
    '// import "./commented.ts";',
    'import { a as again } from "./a.ts";',
  ].join("\n");
  assertEquals(relativeImports(source), ["./a.ts", "../c.ts", "./side.ts", "./dyn.ts"]);
});

Deno.test("importClosure follows imports transitively through folders and stops at cycles", async () => {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(join(root, "lib", "x"), { recursive: true });
  const write = (path: string, text: string) => Deno.writeTextFile(join(root, path), text);
  await write("lib/entry.ts", 'import "./x/one.ts";\n');
  await write("lib/x/one.ts", 'import "../two.ts";\nimport "./missing.ts";\n');
  await write("lib/two.ts", 'import "./entry.ts";\n'); // a cycle back to the entry
  await write("lib/unused.ts", "export {};\n");
  assertEquals(await importClosure(["lib/entry.ts"], { root }), [
    "lib/entry.ts",
    "lib/two.ts",
    "lib/x/missing.ts",
    "lib/x/one.ts",
  ]);
  // A skipped module is neither listed nor followed: two.ts and what only it imports drop out.
  assertEquals(await importClosure(["lib/entry.ts"], { root, skip: (p) => p === "lib/two.ts" }), [
    "lib/entry.ts",
    "lib/x/missing.ts",
    "lib/x/one.ts",
  ]);
  await Deno.remove(root, { recursive: true });
});
