/**
 * Download and unpack the real CIFAR-100 (binary version) for users with
 * internet access: `deno task data:cifar100`.
 *
 * The archive {@link CIFAR100_URL} (161 MiB) is streamed to disk while its
 * MD5 is computed, checked against the published checksum
 * {@link CIFAR100_MD5}, gunzipped with `DecompressionStream("gzip")` and
 * read with the tar reader of `tar.ts`. Four members are written
 * (atomically) into the output directory, which `--data-dir` then reads:
 *
 * | archive member                             | file                     |
 * | ------------------------------------------ | ------------------------ |
 * | `cifar-100-binary/train.bin`               | `train.bin` (50,000 records) |
 * | `cifar-100-binary/test.bin`                | `test.bin` (10,000 records)  |
 * | `cifar-100-binary/fine_label_names.txt`    | `fine_label_names.txt`   |
 * | `cifar-100-binary/coarse_label_names.txt`  | `coarse_label_names.txt` |
 *
 * Finally both splits are parsed with `readCifar100` (record size, label
 * ranges, class-name counts), so a directory this module reports as done is
 * one the experiments can read.
 *
 * @module
 */

import { join } from "@std/path";
import { exists, writeFileAtomic } from "../io.ts";
import { CIFAR100_RECORD_BYTES, readCifar100 } from "./cifar100.ts";
import { Md5, md5OfFile } from "./md5.ts";
import { readTar } from "./tar.ts";

/**
 * Where the binary CIFAR-100 archive is published.
 *
 * @example
 * ```ts
 * import { CIFAR100_URL } from "./cifar100_download.ts";
 * console.log(new URL(CIFAR100_URL).hostname); // "www.cs.toronto.edu"
 * ```
 */
export const CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz";

/**
 * The published MD5 of `cifar-100-binary.tar.gz`.
 *
 * @example
 * ```ts
 * import { CIFAR100_MD5 } from "./cifar100_download.ts";
 * console.log(CIFAR100_MD5.length); // 32
 * ```
 */
export const CIFAR100_MD5 = "03b5dce01913d631647c71ecec9e9cb8";

/**
 * Archive member → output file name.
 *
 * @example
 * ```ts
 * import { CIFAR100_MEMBERS } from "./cifar100_download.ts";
 * console.log(Object.values(CIFAR100_MEMBERS)); // ["train.bin", "test.bin", …]
 * ```
 */
export const CIFAR100_MEMBERS: Readonly<Record<string, string>> = Object.freeze({
  "cifar-100-binary/train.bin": "train.bin",
  "cifar-100-binary/test.bin": "test.bin",
  "cifar-100-binary/fine_label_names.txt": "fine_label_names.txt",
  "cifar-100-binary/coarse_label_names.txt": "coarse_label_names.txt",
});

/**
 * Records of the real splits.
 *
 * @example
 * ```ts
 * import { CIFAR100_RECORDS } from "./cifar100_download.ts";
 * console.log(CIFAR100_RECORDS.train * 3074); // 153700000 bytes in train.bin
 * ```
 */
export const CIFAR100_RECORDS: Readonly<{ train: number; test: number }> = Object.freeze({
  train: 50000,
  test: 10000,
});

/** What {@link extractCifar100} and {@link downloadCifar100} produced. */
export interface Cifar100Files {
  /** The output directory. */
  dir: string;
  /** Files written (or found), full paths. */
  files: string[];
  /** Records read back from each split. */
  records: { train: number; test: number };
  /** The archive's MD5 when it was checked (null when not). */
  md5: string | null;
  /** True when the files were already there and nothing was done. */
  skipped: boolean;
}

/** Options of {@link extractCifar100}. */
export interface ExtractCifar100Options {
  /** Expected MD5 of the archive (default {@link CIFAR100_MD5}); null skips the check. */
  md5?: string | null;
  /** Exact record counts to require (default {@link CIFAR100_RECORDS}); null accepts any. */
  records?: { train: number; test: number } | null;
  /** Progress lines. */
  log?: (line: string) => void;
}

function memberName(name: string): string {
  return name.replace(/^\.\//, "");
}

/**
 * Check a downloaded `cifar-100-binary.tar.gz` against its MD5 and unpack
 * train.bin, test.bin and the two label-name files into `outDir`. Errors
 * name the archive, the member and what was expected.
 *
 * @example
 * ```ts ignore
 * import { extractCifar100 } from "./cifar100_download.ts";
 * const r = await extractCifar100("downloads/cifar-100-binary.tar.gz", "data/cifar100");
 * console.log(r.records); // { train: 50000, test: 10000 }
 * ```
 */
export async function extractCifar100(
  archive: string,
  outDir: string,
  options: ExtractCifar100Options = {},
): Promise<Cifar100Files> {
  const expectedMd5 = options.md5 === undefined ? CIFAR100_MD5 : options.md5;
  const records = options.records === undefined ? CIFAR100_RECORDS : options.records;
  let md5: string | null = null;
  if (expectedMd5 !== null) {
    options.log?.(`checking the MD5 of ${archive}`);
    md5 = await md5OfFile(archive);
    if (md5 !== expectedMd5.toLowerCase()) {
      throw new Error(
        `${archive}: MD5 is ${md5}, expected ${expectedMd5.toLowerCase()} (the published checksum); ` +
          `the file is corrupt or incomplete: delete it and download it again`,
      );
    }
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(archive, { read: true });
  } catch (err) {
    throw new Error(`could not read ${archive}: ${(err as Error).message}`, { cause: err });
  }
  const written = new Map<string, string>();
  try {
    const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
    for await (
      const entry of readTar(stream, {
        source: archive,
        want: (h) => h.type === "file" && memberName(h.name) in CIFAR100_MEMBERS,
      })
    ) {
      const member = memberName(entry.name);
      const out = CIFAR100_MEMBERS[member];
      if (out.endsWith(".bin")) {
        const split = out === "train.bin" ? "train" : "test";
        if (entry.size === 0 || entry.size % CIFAR100_RECORD_BYTES !== 0) {
          throw new Error(
            `${archive}: ${member} has ${entry.size} bytes, not a positive multiple of the ` +
              `${CIFAR100_RECORD_BYTES}-byte CIFAR-100 record`,
          );
        }
        const n = entry.size / CIFAR100_RECORD_BYTES;
        if (records && n !== records[split]) {
          throw new Error(
            `${archive}: ${member} holds ${n} records, expected ${records[split]}`,
          );
        }
      }
      const path = join(outDir, out);
      await writeFileAtomic(path, entry.data);
      written.set(member, path);
      options.log?.(`wrote ${path} (${entry.size} bytes)`);
    }
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(
      msg.startsWith(archive) ? msg : `${archive}: could not unpack (gzip/tar): ${msg}`,
      { cause: err },
    );
  }
  const missing = Object.keys(CIFAR100_MEMBERS).filter((m) => !written.has(m));
  if (missing.length > 0) {
    throw new Error(`${archive}: the archive lacks ${missing.join(", ")}`);
  }
  const counts = await verifyDir(outDir);
  return { dir: outDir, files: [...written.values()], records: counts, md5, skipped: false };
}

/** Parse both splits (with the label names); returns the record counts. */
async function verifyDir(dir: string): Promise<{ train: number; test: number }> {
  const train = await readCifar100(dir, { split: "train" });
  const test = await readCifar100(dir, { split: "test" });
  return { train: train.count, test: test.count };
}

/** Options of {@link downloadCifar100}. */
export interface DownloadCifar100Options extends ExtractCifar100Options {
  /** The archive's URL (default {@link CIFAR100_URL}). */
  url?: string;
  /** The fetch function (default the global `fetch`; tests pass a fake). */
  fetch?: (url: string) => Promise<Response>;
  /** Keep `cifar-100-binary.tar.gz` in `outDir` after unpacking (default false). */
  keepArchive?: boolean;
  /** Download again even when the four files are already there (default false). */
  force?: boolean;
}

/**
 * Download the binary CIFAR-100 archive into `outDir` (streamed to
 * `cifar-100-binary.tar.gz.part` while hashing), check its MD5, unpack the
 * four files and verify them. When `outDir` already holds the four files
 * and they parse, nothing is downloaded (`skipped`) unless `force`.
 *
 * @example
 * ```ts ignore
 * import { downloadCifar100 } from "./cifar100_download.ts";
 * const r = await downloadCifar100("data/cifar100", { log: console.log });
 * console.log(r.dir, r.records);
 * ```
 */
export async function downloadCifar100(
  outDir: string,
  options: DownloadCifar100Options = {},
): Promise<Cifar100Files> {
  const files = Object.values(CIFAR100_MEMBERS).map((f) => join(outDir, f));
  if (!options.force && (await Promise.all(files.map(exists))).every((x) => x)) {
    try {
      const records = await verifyDir(outDir);
      const want = options.records === undefined ? CIFAR100_RECORDS : options.records;
      if (!want || (records.train === want.train && records.test === want.test)) {
        options.log?.(
          `${outDir} already holds CIFAR-100 (${records.train} + ${records.test} images)`,
        );
        return { dir: outDir, files, records, md5: null, skipped: true };
      }
    } catch (err) {
      options.log?.(
        `${outDir}: the existing files do not parse (${(err as Error).message}); ` +
          `downloading again`,
      );
    }
  }
  const url = options.url ?? CIFAR100_URL;
  const expectedMd5 = options.md5 === undefined ? CIFAR100_MD5 : options.md5;
  const archive = join(outDir, "cifar-100-binary.tar.gz");
  const part = `${archive}.part`;
  await Deno.mkdir(outDir, { recursive: true });
  options.log?.(`downloading ${url}`);
  const doFetch = options.fetch ?? ((u: string) => fetch(u));
  let response: Response;
  try {
    response = await doFetch(url);
  } catch (err) {
    throw new Error(`could not download ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`could not download ${url}: HTTP ${response.status} ${response.statusText}`);
  }
  const total = Number(response.headers.get("content-length") ?? NaN);
  const hash = new Md5();
  let received = 0;
  let nextReport = 0.1;
  const meter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      hash.update(chunk);
      received += chunk.length;
      if (Number.isFinite(total) && total > 0 && received / total >= nextReport) {
        options.log?.(
          `  ${Math.floor((100 * received) / total)}% (${(received / 2 ** 20).toFixed(1)} MiB)`,
        );
        while (received / total >= nextReport) nextReport += 0.1;
      }
      controller.enqueue(chunk);
    },
  });
  try {
    const out = await Deno.open(part, { write: true, create: true, truncate: true });
    await response.body.pipeThrough(meter).pipeTo(out.writable);
  } catch (err) {
    await Deno.remove(part).catch(() => {});
    throw new Error(
      `download of ${url} failed after ${received} bytes: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (Number.isFinite(total) && received !== total) {
    await Deno.remove(part).catch(() => {});
    throw new Error(`download of ${url} is incomplete: ${received} of ${total} bytes`);
  }
  const md5 = hash.hex();
  if (expectedMd5 !== null && md5 !== expectedMd5.toLowerCase()) {
    await Deno.remove(part).catch(() => {});
    throw new Error(
      `${url}: the downloaded ${received} bytes have MD5 ${md5}, expected ${expectedMd5.toLowerCase()} ` +
        `(the published checksum); nothing was kept`,
    );
  }
  await Deno.rename(part, archive);
  options.log?.(`MD5 ${md5} ok (${received} bytes)`);
  const result = await extractCifar100(archive, outDir, {
    md5: null,
    records: options.records,
    log: options.log,
  });
  if (!options.keepArchive) await Deno.remove(archive);
  return { ...result, md5 };
}
