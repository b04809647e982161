/**
 * What the bench records of the machine: CPU model and load average.
 *
 * @module
 */

/**
 * A /proc file's text. Deno refuses /proc reads without --allow-all, so the
 * file is read by `cat` (the bench task has --allow-run); null when that fails.
 */
async function procText(path: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .output();
    return out.code === 0 ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null;
  }
}

/**
 * The CPU model name from /proc/cpuinfo (`unknown CPU` when unreadable).
 *
 * @example
 * ```ts ignore
 * await cpuModel(); // "Intel(R) Xeon(R) Processor"
 * ```
 */
export async function cpuModel(): Promise<string> {
  const info = await procText("/proc/cpuinfo");
  return info?.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
}

/**
 * The 1-, 5- and 15-minute load averages from /proc/loadavg (null when unreadable).
 *
 * @example
 * ```ts ignore
 * await loadAverage(); // "0.82 1.49 2.28"
 * ```
 */
export async function loadAverage(): Promise<string | null> {
  const text = await procText("/proc/loadavg");
  return text ? text.split(" ").slice(0, 3).join(" ") : null;
}
