import { assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { exists, readJson, writeFileAtomic, writeJsonAtomic } from "../lib/io.ts";

Deno.test("writeFileAtomic writes, replaces, creates parents and leaves no temp files", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "a", "b", "x.txt");
  await writeFileAtomic(path, "one");
  await writeFileAtomic(path, "two");
  assertEquals(await Deno.readTextFile(path), "two");
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
  assertEquals(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
  const names = [];
  for await (const e of Deno.readDir(join(dir, "a", "b"))) names.push(e.name);
  assertEquals(names, ["x.txt"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readJson round-trips and names the file on errors", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "c.json");
  await writeJsonAtomic(path, { a: [1, 2], b: "x" });
  assertEquals(await readJson(path), { a: [1, 2], b: "x" });
  await Deno.writeTextFile(path, "{not json");
  await assertRejects(() => readJson(path), Error, `${path} is not valid JSON`);
  await assertRejects(() => readJson(join(dir, "missing.json")), Error, "could not read");
  assertEquals(await exists(path), true);
  assertEquals(await exists(join(dir, "missing.json")), false);
  await Deno.remove(dir, { recursive: true });
});
