/**
 * A progress line on stderr: live (`\r`-updated) on a terminal, a plain line
 * every `intervalSeconds` otherwise (CI logs, files).
 *
 * @module
 */

/** What one progress update reports. */
export interface ProgressInfo {
  /** Label of the run part (method name, `pretrain`). */
  label: string;
  /** 1-based task and count. */
  task: number;
  /** Number of tasks. */
  tasks: number;
  /** 1-based epoch. */
  epoch: number;
  /** Epochs of this task. */
  epochs: number;
  /** 1-based step in the epoch. */
  step: number;
  /** Steps per epoch. */
  steps: number;
  /** Latest loss. */
  loss: number;
  /** Training throughput, in `unit`s per second. */
  imagesPerSecond: number;
  /** What the throughput counts: `img` (default), `ex` (LM examples), `seq` (pre-training sequences). */
  unit?: string;
  /** Estimated seconds left in the whole run part, or NaN. */
  etaSeconds: number;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Render one progress line (no newline). */
export function formatProgress(p: ProgressInfo): string {
  return `[${p.label}] task ${p.task}/${p.tasks} epoch ${p.epoch}/${p.epochs} ` +
    `step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ` +
    `${p.imagesPerSecond.toFixed(1)} ${p.unit ?? "img"}/s ETA ${formatDuration(p.etaSeconds)}`;
}

/**
 * Writes progress lines to stderr.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const progress = new Progress({ quiet: true });
 * progress.update({ label: "seqlora", task: 1, tasks: 10, epoch: 1, epochs: 2, step: 3,
 *   steps: 30, loss: 2.3, imagesPerSecond: 80, etaSeconds: 120 });
 * progress.done();
 * ```
 */
export class Progress {
  #live: boolean;
  #quiet: boolean;
  #interval: number;
  #last = 0;
  #pending = false;
  #encoder = new TextEncoder();

  /** `quiet` silences everything; `intervalSeconds` paces non-terminal output (default 20). */
  constructor(options: { quiet?: boolean; intervalSeconds?: number } = {}) {
    this.#quiet = options.quiet ?? false;
    this.#interval = options.intervalSeconds ?? 20;
    this.#live = !this.#quiet && Deno.stderr.isTerminal();
  }

  /** Report progress; rate-limited. */
  update(info: ProgressInfo): void {
    if (this.#quiet) return;
    const now = performance.now() / 1000;
    if (this.#live) {
      if (now - this.#last < 0.2) return;
      this.#last = now;
      this.#write(`\r\x1b[2K${formatProgress(info)}`);
      this.#pending = true;
    } else if (now - this.#last >= this.#interval) {
      this.#last = now;
      this.#write(formatProgress(info) + "\n");
    }
  }

  /** Print a message on its own line. */
  log(message: string): void {
    if (this.#quiet) return;
    this.done();
    this.#write(message + "\n");
  }

  /** End a live line. */
  done(): void {
    if (this.#pending) this.#write("\n");
    this.#pending = false;
  }

  #write(s: string): void {
    Deno.stderr.writeSync(this.#encoder.encode(s));
  }
}
