// The throughput plot of the tunnel detail: bits per second each way
// over the last minutes, as an SVG (no canvas, no library).

import { formatRate, type Rate } from "./state";

const SVG = "http://www.w3.org/2000/svg";

export interface PlotSize {
  width: number;
  height: number;
}

/** The y axis top: the largest rate rounded up to 1, 2 or 5 × 10^n. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

/**
 * The polyline points of one direction: x from `now - windowS` (left) to
 * `now` (right), y from 0 (bottom) to `top`.
 */
export function polyline(
  rates: Rate[],
  pick: (r: Rate) => number,
  now: number,
  windowS: number,
  top: number,
  size: PlotSize,
): string {
  return rates
    .filter((r) => r.at >= now - windowS)
    .map((r) => {
      const x = ((r.at - (now - windowS)) / windowS) * size.width;
      const y = size.height - (Math.max(0, pick(r)) / top) * size.height;
      return `${round(x)},${round(y)}`;
    })
    .join(" ");
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

function el<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** The plot of `rates` ending at `now` (unix seconds). */
export function renderPlot(
  rates: Rate[],
  now: number,
  windowS = 300,
  size: PlotSize = { width: 900, height: 200 },
): SVGSVGElement {
  const top = niceMax(Math.max(0, ...rates.map((r) => Math.max(r.tx, r.rx))));
  const svg = el("svg", {
    class: "plot",
    viewBox: `0 0 ${size.width} ${size.height}`,
    role: "img",
    "aria-label": `Throughput of the last ${windowS / 60} minutes`,
  });
  for (const f of [0.25, 0.5, 0.75]) {
    svg.append(
      el("line", {
        class: "grid",
        x1: 0,
        x2: size.width,
        y1: size.height * f,
        y2: size.height * f,
      }),
    );
  }
  const label = el("text", { class: "axis", x: 4, y: 12 });
  label.textContent = formatRate(top);
  svg.append(label);
  const span = el("text", { class: "axis", x: 4, y: size.height - 4 });
  span.textContent = `last ${windowS / 60} min`;
  svg.append(span);
  for (const [dir, pick] of [
    ["rx", (r: Rate) => r.rx],
    ["tx", (r: Rate) => r.tx],
  ] as const) {
    svg.append(
      el("polyline", {
        class: `line ${dir}`,
        "data-dir": dir,
        points: polyline(rates, pick, now, windowS, top, size),
      }),
    );
  }
  return svg;
}
