import { assert, assertEquals, assertThrows } from "@std/assert";
import { elfExports } from "../lib/elf_symbols.ts";
import { tinyElf, withTempDir } from "./helpers.ts";

Deno.test("elfExports reads the defined dynamic symbols of a hand-built ELF64 (both byte orders)", async () => {
  await withTempDir("treelora-elf-", async (dir) => {
    for (const bigEndian of [false, true]) {
      const path = `${dir}/lib${bigEndian ? "be" : "le"}.so`;
      await Deno.writeFile(
        path,
        tinyElf([{ name: "cblas_sgemm", defined: true }, { name: "malloc", defined: false }, {
          name: "openblas_get_config",
          defined: true,
        }], { bigEndian }),
      );
      const { bits, names } = elfExports(path);
      assertEquals(bits, 64);
      assertEquals([...names].sort(), ["cblas_sgemm", "openblas_get_config"]);
    }
  });
});

Deno.test("elfExports names the file for a non-ELF, a truncated and an out-of-range file", async () => {
  await withTempDir("treelora-elf-", async (dir) => {
    const text = `${dir}/notes.txt`;
    await Deno.writeTextFile(text, '{\n  "tasks": {}\n}\n'.repeat(10));
    assertThrows(() => elfExports(text), Error, `${text} is not an ELF shared object`);
    const good = tinyElf([{ name: "cblas_sgemm", defined: true }]);
    const cut = `${dir}/cut.so`;
    await Deno.writeFile(cut, good.subarray(0, good.length - 100));
    assertThrows(() => elfExports(cut), Error, `${cut}: the section header table`);
    const bad = good.slice();
    new DataView(bad.buffer).setBigUint64(0x28, 1n << 40n, true);
    const far = `${dir}/far.so`;
    await Deno.writeFile(far, bad);
    const err = assertThrows(() => elfExports(far), Error);
    assert(err.message.startsWith(far), err.message);
  });
});

Deno.test("elfExports: random byte flips of a valid file end in a read or a named error", async () => {
  await withTempDir("treelora-elf-", async (dir) => {
    const good = tinyElf([{ name: "cblas_sgemm", defined: true }]);
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    let errors = 0;
    for (let k = 0; k < 300; k++) {
      const bytes = good.slice();
      for (let f = 0; f < 3; f++) {
        bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      }
      const path = `${dir}/m${k}.so`;
      await Deno.writeFile(path, bytes);
      try {
        elfExports(path);
      } catch (err) {
        errors++;
        assert((err as Error).message.includes(path), (err as Error).message);
      }
    }
    assert(errors > 0);
  });
});
