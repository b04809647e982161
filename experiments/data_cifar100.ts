/**
 * `deno task data:cifar100` — download the real CIFAR-100 (binary version)
 * into `data/cifar100/`, check its published MD5 and unpack train.bin,
 * test.bin and the label names; then
 * `deno task exp:split-cifar --data-dir data/cifar100`.
 *
 * Needs network access to www.cs.toronto.edu and write access to `data/`:
 *
 *     deno run --allow-net=www.cs.toronto.edu --allow-read --allow-write=data experiments/data_cifar100.ts
 *
 * `--archive FILE` unpacks an archive downloaded by other means instead
 * (no network); `--keep-archive` keeps the 161 MiB archive; `--force`
 * downloads again even if the files are there.
 *
 * @module
 */

import { downloadCifar100, extractCifar100 } from "../lib/data/cifar100_download.ts";
import { flagHelp, type FlagSpec, parseFlags } from "../lib/flags.ts";

/** The flags of `data:cifar100`. */
export const DATA_CIFAR100_FLAGS: Record<string, FlagSpec> = {
  out: { type: "string", help: "output directory", default: "data/cifar100" },
  archive: {
    type: "string",
    help: "unpack this cifar-100-binary.tar.gz instead of downloading (MD5 still checked)",
  },
  "keep-archive": { type: "boolean", help: "keep the downloaded archive in the output directory" },
  force: { type: "boolean", help: "download again even if the files are already there" },
  quiet: { type: "boolean", help: "no progress output" },
  help: { type: "boolean", help: "print this help" },
};

/**
 * Parse `args`, download or unpack, and return an exit code (0 ok, 2 bad flags, 1 failure).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runDataCifar100(["--archive", "downloads/cifar-100-binary.tar.gz"]));
 * ```
 */
export async function runDataCifar100(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseFlags(args, DATA_CIFAR100_FLAGS);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 2;
  }
  if (flags.help) {
    console.log(flagHelp("deno task data:cifar100 [flags]", DATA_CIFAR100_FLAGS));
    return 0;
  }
  const out = (flags.out as string | undefined) ?? "data/cifar100";
  const log = flags.quiet ? undefined : (line: string) => console.log(line);
  try {
    const result = flags.archive !== undefined
      ? await extractCifar100(flags.archive as string, out, { log })
      : await downloadCifar100(out, {
        keepArchive: Boolean(flags["keep-archive"]),
        force: Boolean(flags.force),
        log,
      });
    console.log(
      `${result.dir}: CIFAR-100, ${result.records.train} train + ${result.records.test} test ` +
        `images${result.skipped ? " (already there)" : ""}; use --data-dir ${result.dir}`,
    );
    return 0;
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await runDataCifar100(Deno.args));
}
