/**
 * Wall-clock accounting by named component.
 *
 * The trainer times `forward_backward`, `optimizer`, `data` and `eval`; a
 * method times its own parts (TreeLoRA: `signature`, `tree_build`, `search`,
 * `regularizer`) through the same {@link Timer}, so every second of a task is
 * attributed to a named component in `components.csv`.
 *
 * Sections nest, and the accounting is exclusive: the time of a section
 * timed inside another is subtracted from the outer one, so the components
 * of a task add up to its wall-clock time without double counting (e.g.
 * TreeLoRA's `regularizer` inside the trainer's `forward_backward`).
 *
 * The wasm and cpu backends run kernels synchronously, so a timed section
 * covers its own compute. On asynchronous backends (webgpu) the trainer reads
 * the loss at the end of every step, which synchronises the device.
 *
 * @module
 */

/**
 * Accumulates seconds per component name.
 *
 * @example
 * ```ts
 * import { Timer } from "./timer.ts";
 * const timer = new Timer();
 * const x = timer.time("search", () => 1 + 1);
 * timer.totals(); // { search: <seconds> }
 * ```
 */
export class Timer {
  #totals = new Map<string, number>();
  #counts = new Map<string, number>();
  #stack: number[] = [];

  /** Time a synchronous function under `name` and return its result. */
  time<T>(name: string, fn: () => T): T {
    const t0 = this.#enter();
    try {
      return fn();
    } finally {
      this.#exit(name, t0);
    }
  }

  /** Time an asynchronous function under `name` and return its result. */
  async timeAsync<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = this.#enter();
    try {
      return await fn();
    } finally {
      this.#exit(name, t0);
    }
  }

  #enter(): number {
    this.#stack.push(0);
    return performance.now();
  }

  #exit(name: string, t0: number): void {
    const inner = this.#stack.pop() ?? 0;
    const elapsed = (performance.now() - t0) / 1000;
    this.add(name, elapsed - inner);
    if (this.#stack.length > 0) this.#stack[this.#stack.length - 1] += elapsed;
  }

  /** Add `seconds` to component `name` (exclusive time; not subtracted from an enclosing section). */
  add(name: string, seconds: number): void {
    this.#totals.set(name, (this.#totals.get(name) ?? 0) + seconds);
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
  }

  /** Seconds per component since the last reset. */
  totals(): Record<string, number> {
    return Object.fromEntries(this.#totals);
  }

  /** Number of timed sections per component since the last reset. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /** Forget all totals. */
  reset(): void {
    this.#totals.clear();
    this.#counts.clear();
  }
}
