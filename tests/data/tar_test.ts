import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { encodeTar, readTar, type TarFile, type TarHeader } from "../../lib/data/tar.ts";
import { Rng } from "../../lib/random.ts";

const enc = new TextEncoder();

function bytes(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

/** A stream that hands out `data` in chunks of `size` bytes (to exercise chunk boundaries). */
function chunked(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i >= data.length) return controller.close();
      controller.enqueue(data.slice(i, i + size));
      i += size;
    },
  });
}

async function readAll(
  data: Uint8Array,
  options: { chunk?: number; want?: (h: TarHeader) => boolean } = {},
): Promise<TarFile[]> {
  const out: TarFile[] = [];
  for await (
    const f of readTar(chunked(data, options.chunk ?? 1000), {
      source: "t.tar",
      want: options.want,
    })
  ) out.push(f);
  return out;
}

const LONG = `${"d".repeat(60)}/${"e".repeat(60)}/file-with-a-long-name.bin`; // 150 bytes: ustar prefix

Deno.test("tar: encode → read round trip (empty, 512-byte, odd sizes, ustar prefix), any chunking", async () => {
  const files = [
    { name: "a/empty.txt", data: new Uint8Array(0) },
    { name: "a/block.bin", data: bytes(512, 1) },
    { name: "a/odd.bin", data: bytes(1000, 2), mode: 0o600, mtime: 1_700_000_000 },
    { name: LONG, data: bytes(3, 3) },
  ];
  const archive = encodeTar(files);
  assertEquals(archive.length % 512, 0);
  for (const chunk of [1, 7, 512, 100_000]) {
    const got = await readAll(archive, { chunk });
    assertEquals(got.map((f) => f.name), files.map((f) => f.name), `chunk ${chunk}`);
    got.forEach((f, i) => {
      assertEquals(f.data, files[i].data);
      assertEquals([f.size, f.type, f.typeflag], [files[i].data.length, "file", "0"]);
    });
    assertEquals([got[2].mode, got[2].mtime], [0o600, 1_700_000_000]);
  }
  // Unwanted entries are skipped, wanted ones still arrive intact.
  const only = await readAll(archive, { want: (h) => h.name.endsWith("odd.bin"), chunk: 13 });
  assertEquals(only.map((f) => f.name), ["a/odd.bin"]);
  assertEquals(only[0].data, files[2].data);
});

Deno.test("tar: a corrupt header, a truncated entry and a non-tar stream are errors naming the archive", async () => {
  const archive = encodeTar([{ name: "x.bin", data: bytes(2000, 4) }]);
  const bad = archive.slice();
  bad[10] ^= 0xff; // a byte of the name: the checksum no longer matches
  await assertRejects(() => readAll(bad), Error, "t.tar: header at byte 0: checksum");
  await assertRejects(
    () => readAll(archive.slice(0, 512 + 1000)),
    Error,
    `t.tar: entry "x.bin" is truncated: 1000 of 2000 bytes`,
  );
  await assertRejects(
    () => readAll(archive.slice(0, 512 + 1000), { want: () => false }),
    Error,
    `t.tar: entry "x.bin" is truncated`,
  );
  await assertRejects(() => readAll(enc.encode("x".repeat(600))), Error, "t.tar: header at byte 0");
  await assertRejects(() => readAll(archive.slice(0, 100)), Error, "truncated header at byte 0");
});

async function hasTar(): Promise<boolean> {
  try {
    return (await new Deno.Command("tar", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "tar: interoperates with the system's tar (GNU long names, gzip) both ways",
  ignore: !(await hasTar()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "treelora-tar-" });
    try {
      const src = join(dir, "src");
      const deep = `${"n".repeat(120)}.bin`; // > 100 bytes: GNU tar writes a ././@LongLink entry
      await Deno.mkdir(join(src, "sub"), { recursive: true });
      await Deno.writeFile(join(src, "sub", "one.bin"), bytes(777, 5));
      await Deno.writeFile(join(src, "sub", deep), bytes(5, 6));
      const gz = join(dir, "x.tar.gz");
      const made = await new Deno.Command("tar", {
        args: ["-czf", gz, "-C", src, "sub"],
        stderr: "piped",
      }).output();
      assert(made.success, new TextDecoder().decode(made.stderr));
      const stream = (await Deno.open(gz)).readable.pipeThrough(new DecompressionStream("gzip"));
      const got: TarFile[] = [];
      for await (const f of readTar(stream, { source: gz })) got.push(f);
      const byName = new Map(got.map((f) => [f.name, f.data]));
      assertEquals(byName.get("sub/one.bin"), bytes(777, 5));
      assertEquals(byName.get(`sub/${deep}`), bytes(5, 6));

      // And the system's tar reads what encodeTar writes.
      const ours = join(dir, "ours.tar");
      await Deno.writeFile(ours, encodeTar([{ name: LONG, data: bytes(9, 7) }]));
      const out = join(dir, "out");
      await Deno.mkdir(out);
      const x = await new Deno.Command("tar", { args: ["-xf", ours, "-C", out], stderr: "piped" })
        .output();
      assert(x.success, new TextDecoder().decode(x.stderr));
      assertEquals(await Deno.readFile(join(out, LONG)), bytes(9, 7));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
