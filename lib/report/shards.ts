/**
 * Merging sharded sweeps. `--shard i/n` writes the i-th share of a run's
 * (order × seed × method) grid into `<run>/shard-i-of-n/`; `mergeShards(run)`
 * concatenates the shards' tables into `<run>/` in grid order, so that the
 * merged run reads like the unsharded one, and `deno task report` renders it.
 *
 * @module
 */

import { join } from "@std/path";
import { exists, readJson, writeFileAtomic, writeJsonAtomic } from "../io.ts";
import { readCsvRows, type Row, tableToCsv } from "./tables.ts";

const SHARD = /^shard-(\d+)-of-(\d+)$/;
const TABLES = ["matrix.csv", "timings.csv", "components.csv", "losses.csv"];

/** The shard folders directly under `dir` (sorted by index), or [] when there are none. */
export async function shardDirs(
  dir: string,
): Promise<{ path: string; index: number; count: number }[]> {
  const out: { path: string; index: number; count: number }[] = [];
  if (!(await exists(dir))) return out;
  for await (const e of Deno.readDir(dir)) {
    const m = e.isDirectory ? SHARD.exec(e.name) : null;
    if (m) out.push({ path: join(dir, e.name), index: Number(m[1]), count: Number(m[2]) });
  }
  return out.sort((a, b) => a.index - b.index);
}

interface Grid {
  orders: (number | null)[];
  seeds: number[];
  methods: string[];
}

/** What one shard holds once read and checked. */
interface ShardData {
  path: string;
  index: number;
  count: number;
  // deno-lint-ignore no-explicit-any
  config: any;
  status: { complete: boolean; finished: Record<string, number> };
  tables: Map<string, Row[]>;
}

/** Read a shard's config, status and tables; throws (naming the file) when one is unreadable. */
async function readShard(s: { path: string; index: number; count: number }): Promise<ShardData> {
  // deno-lint-ignore no-explicit-any
  const config = await readJson<any>(join(s.path, "config.json"));
  const grid = config?.grid;
  if (
    !grid || !Array.isArray(grid.orders) || !Array.isArray(grid.seeds) ||
    !Array.isArray(grid.methods)
  ) {
    throw new Error(`${join(s.path, "config.json")}: no grid { orders, seeds, methods }`);
  }
  const status = await readJson<ShardData["status"]>(join(s.path, "status.json"));
  if (!status || typeof status.finished !== "object" || status.finished === null) {
    throw new Error(`${join(s.path, "status.json")}: expected { finished, complete }`);
  }
  const tables = new Map<string, Row[]>();
  for (const table of TABLES) {
    const path = join(s.path, table);
    if (await exists(path)) tables.set(table, await readCsvRows(path));
  }
  return { ...s, config, status, tables };
}

function gridKey(grid: Grid): string {
  return JSON.stringify([grid.orders, grid.seeds, grid.methods]);
}

/**
 * Merge the shard folders of `dir` into `dir` (tables, config.json, status.json).
 * Returns the number of shards merged and whether every shard is there and complete. A shard
 * that cannot be read, or whose grid differs from the others', is skipped and named through
 * `options.onSkip` (the merged run is then incomplete); with no `onSkip` it is an error.
 *
 * @example
 * ```ts ignore
 * const { shards, complete } = await mergeShards("results/split-cifar/sweep");
 * ```
 */
export async function mergeShards(
  dir: string,
  options: { onSkip?: (path: string, reason: string) => void } = {},
): Promise<{ shards: number; complete: boolean }> {
  const shards = await shardDirs(dir);
  if (shards.length === 0) throw new Error(`${dir}: no shard-i-of-n folders to merge`);
  const count = shards[0].count;
  if (shards.some((s) => s.count !== count)) {
    throw new Error(
      `${dir}: shard folders disagree on n (${shards.map((s) => s.count).join(", ")})`,
    );
  }
  const skip = (path: string, reason: string) => {
    if (!options.onSkip) throw new Error(`${path}: ${reason}`);
    options.onSkip(path, reason);
  };
  const withResults: ShardData[] = [];
  for (const s of shards) {
    if (!(await exists(join(s.path, "matrix.csv")))) continue;
    let data: ShardData;
    try {
      data = await readShard(s);
    } catch (err) {
      skip(s.path, (err as Error).message);
      continue;
    }
    if (
      withResults.length > 0 && gridKey(data.config.grid) !== gridKey(withResults[0].config.grid)
    ) {
      skip(s.path, `its grid differs from ${withResults[0].path}'s (another sweep's shard)`);
      continue;
    }
    withResults.push(data);
  }
  if (withResults.length === 0) throw new Error(`${dir}: no shard has results yet`);
  const config = withResults[0].config;
  const grid: Grid = config.grid;
  const rank = (r: Row) => {
    const o = grid.orders.findIndex((x) =>
      String(x ?? "natural") === String(r.order ?? grid.orders[0] ?? "natural")
    );
    const s = grid.seeds.indexOf(Number(r.seed));
    const m = grid.methods.indexOf(String(r.method));
    return (o * grid.seeds.length + s) * grid.methods.length + m;
  };
  for (const table of TABLES) {
    const rows: { row: Row; at: number }[] = [];
    for (const s of withResults) {
      (s.tables.get(table) ?? []).forEach((row, at) => rows.push({ row, at }));
    }
    if (rows.length === 0) continue;
    rows.sort((a, b) => rank(a.row) - rank(b.row) || a.at - b.at);
    await writeFileAtomic(join(dir, table), tableToCsv(rows.map((r) => r.row)));
  }
  let complete = withResults.length === count;
  const finished: Record<string, number> = {};
  for (const s of withResults) {
    complete &&= s.status.complete;
    Object.assign(finished, s.status.finished);
  }
  await writeJsonAtomic(join(dir, "config.json"), {
    ...config,
    grid: {
      ...grid,
      shard: null,
      mergedFrom: withResults.map((s) => `shard-${s.index}-of-${s.count}`),
    },
  });
  await writeJsonAtomic(join(dir, "status.json"), {
    finished,
    numTasks: config.data?.numTasks,
    complete,
    updatedAt: new Date().toISOString(),
    mergedShards: withResults.length,
    expectedShards: count,
  });
  return { shards: withResults.length, complete };
}
