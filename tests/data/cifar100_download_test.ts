import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { encodeCifar100, readCifar100 } from "../../lib/data/cifar100.ts";
import {
  CIFAR100_MD5,
  CIFAR100_URL,
  downloadCifar100,
  extractCifar100,
} from "../../lib/data/cifar100_download.ts";
import { md5Hex } from "../../lib/data/md5.ts";
import { encodeTar, type TarInput } from "../../lib/data/tar.ts";
import type { ImageSet } from "../../lib/data/task.ts";
import { Rng } from "../../lib/random.ts";
import { runDataCifar100 } from "../../experiments/data_cifar100.ts";

function images(count: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  return {
    count,
    size: 32,
    pixels: Uint8Array.from({ length: count * 3072 }, () => rng.int(256)),
    fine: Int32Array.from({ length: count }, () => rng.int(100)),
    coarse: Int32Array.from({ length: count }, () => rng.int(20)),
    source: `test-${seed}`,
  };
}

const FINE = Array.from({ length: 100 }, (_, i) => `fine_${i}`).join("\n") + "\n";
const COARSE = Array.from({ length: 20 }, (_, i) => `coarse_${i}`).join("\n") + "\n";

async function gzip(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A .tar.gz in the layout of cifar-100-binary.tar.gz: 5 train and 3 test records. */
async function smallArchive(
  options: { drop?: string; trainBytes?: Uint8Array } = {},
): Promise<{ gz: Uint8Array<ArrayBuffer>; train: Uint8Array; test: Uint8Array }> {
  const enc = new TextEncoder();
  const train = options.trainBytes ?? encodeCifar100(images(5, 1));
  const test = encodeCifar100(images(3, 2));
  const members: TarInput[] = [
    { name: "cifar-100-binary/coarse_label_names.txt", data: enc.encode(COARSE) },
    { name: "cifar-100-binary/fine_label_names.txt", data: enc.encode(FINE) },
    { name: "cifar-100-binary/test.bin", data: test },
    { name: "cifar-100-binary/train.bin", data: train },
    { name: "cifar-100-binary/readme.txt", data: enc.encode("not extracted\n") },
  ].filter((m) => m.name !== options.drop);
  return { gz: await gzip(encodeTar(members)), train, test };
}

Deno.test("cifar100 download: extraction + MD5 verification of a small archive in the real layout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-c100-" });
  try {
    const { gz, train, test } = await smallArchive();
    const archive = join(dir, "cifar-100-binary.tar.gz");
    await Deno.writeFile(archive, gz);
    const md5 = md5Hex(gz);
    const out = join(dir, "cifar100");
    const r = await extractCifar100(archive, out, { md5, records: { train: 5, test: 3 } });
    assertEquals([r.md5, r.records, r.skipped], [md5, { train: 5, test: 3 }, false]);
    assertEquals(await Deno.readFile(join(out, "train.bin")), train);
    assertEquals(await Deno.readFile(join(out, "test.bin")), test);
    const names = [];
    for await (const e of Deno.readDir(out)) names.push(e.name);
    assertEquals(names.sort(), [
      "coarse_label_names.txt",
      "fine_label_names.txt",
      "test.bin",
      "train.bin",
    ]);
    const set = await readCifar100(out, { split: "train" });
    assertEquals([set.count, set.fineNames?.[99], set.coarseNames?.[0]], [
      5,
      "fine_99",
      "coarse_0",
    ]);

    // A wrong checksum (here: the real archive's) stops before anything is unpacked.
    await assertRejects(
      () => extractCifar100(archive, join(dir, "x"), { records: null }),
      Error,
      `${archive}: MD5 is ${md5}, expected ${CIFAR100_MD5}`,
    );
    // The real record counts are required by default.
    await assertRejects(
      () => extractCifar100(archive, join(dir, "y"), { md5 }),
      Error,
      "cifar-100-binary/test.bin holds 3 records, expected 10000",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cifar100 download: a missing member, a bad record size and a non-gzip file are named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-c100-" });
  try {
    const cases: [Promise<{ gz: Uint8Array }>, string][] = [
      [smallArchive({ drop: "cifar-100-binary/test.bin" }), "lacks cifar-100-binary/test.bin"],
      [
        smallArchive({ trainBytes: new Uint8Array(3075) }),
        "cifar-100-binary/train.bin has 3075 bytes, not a positive multiple of the 3074-byte",
      ],
    ];
    for (const [made, message] of cases) {
      const archive = join(dir, "a.tar.gz");
      await Deno.writeFile(archive, (await made).gz);
      await assertRejects(
        () => extractCifar100(archive, join(dir, "out"), { md5: null, records: null }),
        Error,
        message,
      );
    }
    const plain = join(dir, "plain.tar.gz");
    await Deno.writeFile(plain, new TextEncoder().encode("not gzip at all"));
    await assertRejects(
      () => extractCifar100(plain, join(dir, "out"), { md5: null, records: null }),
      Error,
      `${plain}: could not unpack (gzip/tar)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cifar100 download: streamed through a fake fetch, verified, unpacked, archive removed; then skipped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-c100-" });
  try {
    const { gz, train } = await smallArchive();
    const md5 = md5Hex(gz);
    const urls: string[] = [];
    const fakeFetch = (url: string) => {
      urls.push(url);
      return Promise.resolve(
        new Response(gz, { headers: { "content-length": String(gz.length) } }),
      );
    };
    const out = join(dir, "cifar100");
    const lines: string[] = [];
    const options = {
      fetch: fakeFetch,
      md5,
      records: { train: 5, test: 3 },
      log: (l: string) => lines.push(l),
    };
    const r = await downloadCifar100(out, options);
    assertEquals([urls, r.md5, r.skipped], [[CIFAR100_URL], md5, false]);
    assertEquals(await Deno.readFile(join(out, "train.bin")), train);
    const left = [];
    for await (const e of Deno.readDir(out)) left.push(e.name);
    assert(!left.some((n) => n.includes("tar.gz")), `archive left behind: ${left}`);
    assert(lines.some((l) => l.includes(`MD5 ${md5} ok`)));
    const again = await downloadCifar100(out, options);
    assertEquals([again.skipped, urls.length], [true, 1]);

    // Corrupt bytes: nothing is kept.
    const bad = gz.slice();
    bad[bad.length - 20] ^= 1;
    const out2 = join(dir, "corrupt");
    await assertRejects(
      () =>
        downloadCifar100(out2, {
          ...options,
          fetch: () => Promise.resolve(new Response(bad)),
        }),
      Error,
      `expected ${md5}`,
    );
    const kept = [];
    for await (const e of Deno.readDir(out2)) kept.push(e.name);
    assertEquals(kept, []);
    await assertRejects(
      () =>
        downloadCifar100(join(dir, "404"), {
          ...options,
          fetch: () => Promise.resolve(new Response("gone", { status: 404 })),
        }),
      Error,
      `could not download ${CIFAR100_URL}: HTTP 404`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data:cifar100 script: --help and unknown flags", async () => {
  const log = console.log;
  const error = console.error;
  const printed: string[] = [];
  console.log = (s: string) => printed.push(s);
  console.error = (s: string) => printed.push(s);
  try {
    assertEquals(await runDataCifar100(["--help"]), 0);
    assert(printed[0].includes("--archive"));
    assertEquals(await runDataCifar100(["--bogus"]), 2);
  } finally {
    console.log = log;
    console.error = error;
  }
});
