import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import {
  exists,
  readJson,
  removeInside,
  safeSegment,
  sha256Hex,
  withWriteRoots,
  writeFileAtomic,
  writeJsonAtomic,
} from "../lib/io.ts";

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

Deno.test("withWriteRoots: writes under a root pass; outside a root or through a link they are refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "treelora-roots-" });
  const outside = await Deno.makeTempDir({ prefix: "treelora-outside-" });
  try {
    await withWriteRoots([join(root, "results")], async () => {
      await writeFileAtomic(join(root, "results", "a", "b.txt"), "ok");
      await assertRejects(
        () => writeFileAtomic(join(root, "elsewhere.txt"), "no"),
        Error,
        `refusing to write ${join(root, "elsewhere.txt")}: it lies outside ${
          join(root, "results")
        }`,
      );
      // A link as a folder of the path and as the file itself.
      await Deno.symlink(outside, join(root, "results", "link"));
      await assertRejects(
        () => writeFileAtomic(join(root, "results", "link", "x.txt"), "no"),
        Error,
        `${join(root, "results", "link")} is a symbolic link`,
      );
      await Deno.symlink(join(outside, "f.txt"), join(root, "results", "a", "f.txt"));
      await assertRejects(
        () => writeFileAtomic(join(root, "results", "a", "f.txt"), "no"),
        Error,
        "is a symbolic link",
      );
      // removeInside refuses a link as well; inside a folder it removes links, never their targets.
      await Deno.writeTextFile(join(outside, "keep.txt"), "keep");
      await assertRejects(
        () => removeInside(join(root, "results", "link")),
        Error,
        "is a symbolic link",
      );
      await Deno.remove(join(root, "results", "link"));
      await removeInside(join(root, "results", "a"));
      await assertRejects(() => removeInside(join(root, "other")), Error, "lies outside");
    });
    assertEquals(await Deno.readTextFile(join(outside, "keep.txt")), "keep");
    assertEquals(await exists(join(root, "results", "a")), false);
    // Outside withWriteRoots nothing is checked (library use, tests).
    await writeFileAtomic(join(root, "free.txt"), "ok");
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("safeSegment accepts one folder name and names what it refused", () => {
  assertEquals(safeSegment("run-1.a_b+c=d@e,f", "--out"), "run-1.a_b+c=d@e,f");
  for (const bad of ["", "..", ".x", "a/b", "a\\b", "-x", "a\u0000b", "x".repeat(201)]) {
    assertThrows(() => safeSegment(bad, "--out"), Error, "--out must be one folder name");
  }
});

Deno.test("sha256Hex: the FIPS 180-2 test vector", async () => {
  assertEquals(
    await sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(
    await sha256Hex(new Uint8Array(0)),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
});
