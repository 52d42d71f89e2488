// The front end's picture of the app: the service link, the profiles,
// the counters of each running tunnel, the live log, which screen is
// shown. Views read it; main.ts feeds it from the Rust side's events.

import { Series } from "./state";
import type {
  AppError,
  AppInfo,
  EventRecord,
  LinkState,
  LogLine,
  ProfileView,
  ServiceEvent,
  StatsSample,
} from "./types";

export type Screen =
  | { name: "profiles" }
  | { name: "detail"; profile: string }
  | { name: "peers"; profile: string }
  | { name: "import" }
  | { name: "logs" }
  | { name: "settings" };

export type Notice = { kind: "ok"; text: string } | { kind: "error"; error: AppError } | null;

/** At most this many live log lines and events are kept. */
export const LIVE_LIMIT = 1000;

export class Store {
  info: AppInfo = { version: "", socket: "", user: "" };
  link: LinkState = { state: "connecting", socket: "" };
  profiles: ProfileView[] = [];
  series = new Map<string, Series>();
  logs: LogLine[] = [];
  events: EventRecord[] = [];
  screen: Screen = { name: "profiles" };
  notice: Notice = null;
  /** Profiles whose connect or disconnect is on its way. */
  pending = new Set<string>();
  private listeners = new Set<(what: string) => void>();

  /** Calls `f` after every change with what changed. */
  subscribe(f: (what: string) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  changed(what: string): void {
    for (const f of this.listeners) f(what);
  }

  profile(name: string): ProfileView | undefined {
    return this.profiles.find((p) => p.name === name);
  }

  seriesOf(name: string): Series {
    let s = this.series.get(name);
    if (!s) {
      s = new Series();
      this.series.set(name, s);
    }
    return s;
  }

  setLink(l: LinkState): void {
    this.link = l;
    this.changed("link");
  }

  setProfiles(p: ProfileView[]): void {
    this.profiles = p;
    this.changed("profiles");
  }

  go(screen: Screen): void {
    this.screen = screen;
    this.changed("screen");
  }

  notify(n: Notice): void {
    this.notice = n;
    this.changed("notice");
  }

  /** Merges stored history samples into a tunnel's series. */
  addHistory(name: string, samples: StatsSample[]): void {
    const s = this.seriesOf(name);
    for (const x of samples) s.add({ at: x.at, tx: x.tx.bytes, rx: x.rx.bytes });
    this.changed("stats");
  }

  /** Applies one event of the service's stream. */
  apply(e: ServiceEvent): void {
    switch (e.event) {
      case "stats": {
        this.seriesOf(e.name).add({ at: e.at, tx: e.stats.tx.bytes, rx: e.stats.rx.bytes });
        const p = this.profile(e.name);
        if (p) p.stats = e.stats;
        this.changed("stats");
        break;
      }
      case "log": {
        const { event: _, ...line } = e;
        this.logs.push(line);
        if (this.logs.length > LIVE_LIMIT) this.logs.splice(0, this.logs.length - LIVE_LIMIT);
        this.changed("log");
        break;
      }
      case "recorded": {
        const { event: _, ...rec } = e;
        this.events.push(rec);
        if (this.events.length > LIVE_LIMIT) this.events.splice(0, this.events.length - LIVE_LIMIT);
        this.changed("event");
        break;
      }
      case "state":
        // The Rust side sends the updated profile list as well.
        break;
    }
  }
}
