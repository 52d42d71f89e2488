// What a person sees of a tunnel, and the numbers shown with it. The
// four states follow the same rules as the tray (src-tauri/src/model.rs).

import type { LinkState, ProfileView, TunnelStats } from "./types";

export type Shown = "disconnected" | "connecting" | "connected" | "error";

/** How one profile's tunnel is shown. */
export function shownOf(p: Pick<ProfileView, "state" | "stats">): Shown {
  switch (p.state) {
    case "down":
      return "disconnected";
    case "connecting":
      return "connecting";
    case "failed":
      return "error";
    case "up":
      switch (p.stats?.stage) {
        case "keying":
          return "connecting";
        case "error":
          return "error";
        default:
          return "connected";
      }
  }
}

/** How the whole app is shown: the most pressing state of all. */
export function overall(link: LinkState, profiles: ProfileView[]): Shown {
  if (link.state === "down") return "error";
  if (link.state === "connecting") return "connecting";
  const all = profiles.map(shownOf);
  for (const s of ["error", "connecting", "connected"] as const) {
    if (all.includes(s)) return s;
  }
  return "disconnected";
}

/** True while the tunnel runs or is starting: the switch is on. */
export function isOn(p: Pick<ProfileView, "state">): boolean {
  return p.state === "up" || p.state === "connecting";
}

/**
 * The stage words of the tunnel detail: the key stage, and how packets
 * travel (relay through a cathedral, or direct) once known.
 */
export function stageWords(stats: TunnelStats | null | undefined): string[] {
  if (!stats) return [];
  const words: string[] = [stats.stage];
  if (stats.path) words.push(stats.path);
  return words;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${n} B`;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`;
}

/** Bytes per second as bits per second: 1250 -> "10.0 kbit/s". */
export function formatRate(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
  let v = bits;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** 3725 -> "1 h 2 min", 125 -> "2 min 5 s", 9 -> "9 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    const rest = s % 60;
    return rest ? `${Math.floor(s / 60)} min ${rest} s` : `${s / 60} min`;
  }
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** A sample of the counters at a moment (unix seconds). */
export interface Point {
  at: number;
  tx: number;
  rx: number;
}

/** Throughput between two samples, bytes per second each way. */
export interface Rate {
  at: number;
  tx: number;
  rx: number;
}

/**
 * The counters of one tunnel over the last `windowS` seconds, fed by the
 * service's stats events (one a second) and its stored history.
 */
export class Series {
  private points: Point[] = [];
  constructor(readonly windowS = 300) {}

  /** Adds a sample; out-of-order or duplicate times are ignored. */
  add(p: Point): void {
    const last = this.points[this.points.length - 1];
    if (last && p.at <= last.at) return;
    // A counter that went down means a new tunnel: start over.
    if (last && (p.tx < last.tx || p.rx < last.rx)) this.points = [];
    this.points.push(p);
    const oldest = p.at - this.windowS;
    while (this.points.length > 0 && this.points[0].at < oldest) this.points.shift();
  }

  /** The samples kept, oldest first. */
  all(): readonly Point[] {
    return this.points;
  }

  /** Bytes per second between each pair of neighbouring samples. */
  rates(): Rate[] {
    const out: Rate[] = [];
    for (let i = 1; i < this.points.length; i++) {
      const a = this.points[i - 1];
      const b = this.points[i];
      const dt = b.at - a.at;
      out.push({ at: b.at, tx: (b.tx - a.tx) / dt, rx: (b.rx - a.rx) / dt });
    }
    return out;
  }
}
