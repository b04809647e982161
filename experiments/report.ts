/**
 * `deno task report` — re-render tables, plots and REPORT.md of stored runs,
 * from the files in their run folders only (no retraining).
 *
 * Usage: `deno task report [RUN_DIR ...]`. Without arguments every run folder
 * (a folder with config.json and matrix.csv) under `results/` is re-rendered,
 * then `results/REPORT.md` indexes them.
 *
 * @module
 */

import { runReportCli } from "../lib/report/report_cli.ts";

if (import.meta.main) {
  Deno.exit(await runReportCli(Deno.args));
}
