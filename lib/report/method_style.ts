/**
 * The fixed look of a method in every figure of every run: one colour per method
 * family (the registry name: `treelora`, `hide-lora`, …), and a line dash and
 * point shape per variant (the run's label: `hide-treelora-reduced-epochs` is
 * the `hide-treelora` colour, dashed, with squares). Known variants (the
 * family itself, `…reduced-epochs`, `…paper`, `…equal-epochs`) always get the
 * same dash and shape; other labels of a family take the next free ones in the
 * run's order. In runs with more than {@link HIGHLIGHT_LIMIT} methods, the
 * TreeLoRA family and the strongest baselines (HiDe-LoRA, SeqLoRA, Joint) stay
 * opaque and the rest are muted.
 *
 * @module
 */

/** Colours by method family (registry name), chosen to stay distinct from each other. */
export const FAMILY_COLORS: Readonly<Record<string, string>> = Object.freeze({
  "hide-treelora": "#d62728",
  treelora: "#ff7f0e",
  "hide-lora": "#1f77b4",
  seqlora: "#4d4d4d",
  joint: "#111111",
  ogd: "#8c564b",
  "o-lora": "#17becf",
  inflora: "#bcbd22",
  ewc: "#9467bd",
  gem: "#e377c2",
  lwf: "#2ca02c",
  l2p: "#6baed6",
  dualprompt: "#74c476",
  fix: "#c49c94",
});

/** Colours for families the table above does not know (in order of appearance). */
const SPARE_COLORS = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];

/** Line dashes by variant index (solid first). */
export const VARIANT_DASHES: readonly number[][] = [[], [7, 3], [2, 2], [8, 3, 2, 3], [12, 4]];

/** Point shapes by variant index. */
export const VARIANT_SHAPES: readonly string[] = [
  "circle",
  "square",
  "triangle-up",
  "diamond",
  "cross",
];

/** Families never muted. */
const HIGHLIGHTED = new Set(["hide-treelora", "treelora", "hide-lora", "seqlora", "joint"]);

/** Above this many methods, the non-highlighted ones are muted. */
export const HIGHLIGHT_LIMIT = 6;

/** A method as a run lists it: its label and the registry name (family). */
export interface MethodRef {
  /** The label in the tables (`method` column). */
  label: string;
  /** The registry name; absent = the label. */
  name?: string;
}

/** The look of every method of a run, as Vega-Lite scale domains and ranges. */
export interface MethodStyles {
  /** Labels, in the run's order. */
  domain: string[];
  /** Colour of each label. */
  colors: string[];
  /** Line dash of each label. */
  dashes: number[][];
  /** Point shape of each label. */
  shapes: string[];
  /** Opacity of each label (1, or 0.6 when muted; muted colours are also paler). */
  opacity: number[];
}

function knownVariant(label: string, name: string): number | null {
  if (label === name) return 0;
  if (/reduced/.test(label)) return 1;
  if (/paper/.test(label)) return 2;
  if (/equal-epochs/.test(label)) return 3;
  return null;
}

/**
 * The styles of a run's methods.
 *
 * @example
 * ```ts
 * import { methodStyles } from "./method_style.ts";
 * const s = methodStyles([
 *   { label: "hide-treelora", name: "hide-treelora" },
 *   { label: "hide-treelora-reduced-epochs", name: "hide-treelora" },
 * ]);
 * s.colors; // ["#d62728", "#d62728"]
 * s.shapes; // ["circle", "square"]
 * ```
 */
export function methodStyles(methods: readonly MethodRef[]): MethodStyles {
  const seen = new Set<string>();
  const list = methods.filter((m) => !seen.has(m.label) && seen.add(m.label));
  const spare = new Map<string, string>();
  const used = new Map<string, Set<number>>();
  const variant = new Map<string, number>();
  // Known variants first, so an unknown label never takes their dash and shape.
  for (const m of list) {
    const name = m.name ?? m.label;
    const v = knownVariant(m.label, name);
    if (v === null) continue;
    variant.set(m.label, v);
    used.set(name, (used.get(name) ?? new Set()).add(v));
  }
  for (const m of list) {
    if (variant.has(m.label)) continue;
    const name = m.name ?? m.label;
    const taken = used.get(name) ?? new Set<number>();
    let v = 0;
    while (taken.has(v)) v++;
    variant.set(m.label, v);
    used.set(name, taken.add(v));
  }
  const colorOf = (name: string) => {
    if (FAMILY_COLORS[name]) return FAMILY_COLORS[name];
    if (!spare.has(name)) spare.set(name, SPARE_COLORS[spare.size % SPARE_COLORS.length]);
    return spare.get(name)!;
  };
  const mute = list.length > HIGHLIGHT_LIMIT;
  const muted = (m: MethodRef) => mute && !HIGHLIGHTED.has(m.name ?? m.label);
  return {
    domain: list.map((m) => m.label),
    colors: list.map((m) => {
      const c = colorOf(m.name ?? m.label);
      return muted(m) ? towardWhite(c, 0.55) : c;
    }),
    dashes: list.map((m) => VARIANT_DASHES[variant.get(m.label)! % VARIANT_DASHES.length]),
    shapes: list.map((m) => VARIANT_SHAPES[variant.get(m.label)! % VARIANT_SHAPES.length]),
    opacity: list.map((m) => (muted(m) ? 0.6 : 1)),
  };
}

/** `#rrggbb` moved a fraction `t` of the way toward white (a muted look that renders anywhere). */
function towardWhite(hex: string, t: number): string {
  const n = parseInt(hex.slice(1), 16);
  const ch = (shift: number) => {
    const v = (n >> shift) & 0xff;
    return Math.round(v + (255 - v) * t).toString(16).padStart(2, "0");
  };
  return `#${ch(16)}${ch(8)}${ch(0)}`;
}

/**
 * Vega-Lite encodings of the `method` field with these styles (one merged legend titled
 * "Method"): colour, stroke dash and shape (muting is in the colours: Vega-Lite's opacity
 * channel does not take an unsorted nominal field).
 *
 * @example
 * ```ts
 * import { methodEncodings, methodStyles } from "./method_style.ts";
 * const enc = methodEncodings(methodStyles([{ label: "seqlora" }]));
 * enc.color.scale.range; // ["#4d4d4d"]
 * ```
 */
export function methodEncodings(styles: MethodStyles) {
  const base = { field: "method", type: "nominal" as const, title: "Method" };
  return {
    color: {
      ...base,
      scale: { domain: styles.domain, range: styles.colors },
      legend: { labelLimit: 400, symbolStrokeWidth: 2 },
    },
    strokeDash: { ...base, scale: { domain: styles.domain, range: styles.dashes } },
    shape: { ...base, scale: { domain: styles.domain, range: styles.shapes } },
  };
}
