import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { Md5, md5Hex, md5OfFile, md5OfStream } from "../../lib/data/md5.ts";
import { Rng } from "../../lib/random.ts";

Deno.test("md5: the RFC 1321 test suite (appendix A.5)", () => {
  const vectors: [string, string][] = [
    ["", "d41d8cd98f00b204e9800998ecf8427e"],
    ["a", "0cc175b9c0f1b6a831c399e269772661"],
    ["abc", "900150983cd24fb0d6963f7d28e17f72"],
    ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
    ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
    [
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f",
    ],
    [
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
      "57edf4a22be3c955ac49da2e2107b67a",
    ],
  ];
  for (const [input, digest] of vectors) assertEquals(md5Hex(input), digest, `md5("${input}")`);
});

Deno.test("md5: one million 'a' (a multi-block input with a length over 2^23 bits)", () => {
  assertEquals(md5Hex(new Uint8Array(1_000_000).fill(0x61)), "7707d6ae4e027c70eea2a935c2296f21");
});

Deno.test("md5: any chunking gives the one-shot digest; padding boundaries 55/56/63/64", () => {
  const rng = new Rng(3);
  const data = Uint8Array.from({ length: 5000 }, () => rng.int(256));
  const whole = md5Hex(data);
  for (const chunk of [1, 3, 55, 56, 63, 64, 65, 127, 4999]) {
    const h = new Md5();
    for (let i = 0; i < data.length; i += chunk) h.update(data.subarray(i, i + chunk));
    assertEquals(h.hex(), whole, `chunk ${chunk}`);
  }
  // Lengths around the padding boundary, checked against digests from coreutils md5sum.
  const known: Record<number, string> = {
    55: "ef1772b6dff9a122358552954ad0df65",
    56: "3b0c8ac703f828b04c6c197006d17218",
    63: "b06521f39153d618550606be297466d5",
    64: "014842d480b571495a4a0363793f7367",
  };
  for (const [n, digest] of Object.entries(known)) {
    assertEquals(md5Hex(new Uint8Array(Number(n)).fill(0x61)), digest, `${n} × 'a'`);
  }
  const h = new Md5();
  h.digest();
  assertThrows(() => h.update(new Uint8Array(1)), Error, "already taken");
});

Deno.test("md5: files and streams; a missing file names its path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-md5-" });
  try {
    const path = join(dir, "x.bin");
    const rng = new Rng(9);
    const data = Uint8Array.from({ length: 200_000 }, () => rng.int(256));
    await Deno.writeFile(path, data);
    assertEquals(await md5OfFile(path), md5Hex(data));
    assertEquals(await md5OfStream(new Blob([data]).stream()), md5Hex(data));
    // Cross-check with the system's md5sum when there is one.
    try {
      const out = await new Deno.Command("md5sum", { args: [path], stdout: "piped" }).output();
      if (out.success) {
        assertEquals(new TextDecoder().decode(out.stdout).split(" ")[0], md5Hex(data));
      }
    } catch { /* no md5sum on this machine */ }
    await assertRejects(() => md5OfFile(join(dir, "none")), Error, `could not read ${dir}/none`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
