// The Logs screen: the service's log lines (kept ones, then live), or its
// event log, filtered by text, level and profile, and exported as text.

import { api, asAppError } from "../api";
import { h, replace } from "../dom";
import type { Store } from "../store";
import type { EventRecord, LogLine } from "../types";
import { clock, errorBox } from "./parts";

const LEVELS = ["error", "warn", "info", "debug"];

export interface LogFilter {
  text: string;
  /** Least level shown ("" = all). */
  level: string;
  /** Only this profile ("" = all, "-" = the service itself). */
  profile: string;
}

function rank(level: string): number {
  const i = LEVELS.indexOf(level);
  return i < 0 ? LEVELS.length : i;
}

/** The lines `f` lets through. */
export function filterLines(lines: LogLine[], f: LogFilter): LogLine[] {
  const text = f.text.trim().toLowerCase();
  return lines.filter(
    (l) =>
      (!f.level || rank(l.level) <= rank(f.level)) &&
      (!f.profile || (f.profile === "-" ? !l.profile : l.profile === f.profile)) &&
      (!text || l.message.toLowerCase().includes(text) || (l.profile ?? "").toLowerCase().includes(text)),
  );
}

/** The events `f` lets through (the level does not apply). */
export function filterEvents(events: EventRecord[], f: LogFilter): EventRecord[] {
  const text = f.text.trim().toLowerCase();
  return events.filter(
    (e) =>
      (!f.profile || (f.profile === "-" ? !e.profile : e.profile === f.profile)) &&
      (!text || `${e.kind} ${e.detail} ${e.profile ?? ""}`.toLowerCase().includes(text)),
  );
}

function iso(at: number): string {
  return at ? new Date(at * 1000).toISOString() : "-";
}

/** The text file an export writes. */
export function exportText(lines: LogLine[]): string {
  return lines.map((l) => `${iso(l.at)} ${l.level.toUpperCase()} ${l.profile ?? "chantryd"}: ${l.message}\n`).join("");
}

export function exportEvents(events: EventRecord[]): string {
  return events.map((e) => `${iso(e.at)} ${e.kind} ${e.profile ?? "chantryd"}: ${e.detail}\n`).join("");
}

/** Mounts the screen; returns a function to call when the store changes. */
export function mountLogs(root: HTMLElement, store: Store): (what: string) => void {
  let kept: LogLine[] = [];
  let keptEvents: EventRecord[] = [];
  let which: "log" | "events" = "log";
  const f: LogFilter = { text: "", level: "", profile: "" };
  const problem = h("div", { class: "result" });

  const text = h("input", { id: "log-filter", type: "search", placeholder: "Filter…" });
  const level = h(
    "select",
    { id: "log-level" },
    h("option", { value: "" }, "all levels"),
    LEVELS.map((l) => h("option", { value: l }, `${l} and worse`)),
  );
  const profile = h("select", { id: "log-profile" });
  const list = h("div", { class: "log-list", id: "log-list", role: "log" });
  const count = h("span", { class: "muted", id: "log-count" });
  const tabs = h("div", { class: "tabs", role: "tablist" });

  const profiles = () => {
    const cur = profile.value;
    replace(
      profile,
      h("option", { value: "" }, "all profiles"),
      h("option", { value: "-" }, "the service"),
      store.profiles.map((p) => h("option", { value: p.name }, p.name)),
    );
    profile.value = cur;
  };

  const allLines = () => {
    const seen = new Set(kept.map((l) => `${l.at}|${l.message}`));
    return [...kept, ...store.logs.filter((l) => !seen.has(`${l.at}|${l.message}`))];
  };
  const allEvents = () => {
    const seen = new Set(keptEvents.map((e) => `${e.at}|${e.kind}|${e.detail}`));
    return [...keptEvents, ...store.events.filter((e) => !seen.has(`${e.at}|${e.kind}|${e.detail}`))];
  };

  const draw = () => {
    replace(
      tabs,
      h("button", { role: "tab", id: "tab-log", "aria-selected": which === "log" ? "true" : "false", onclick: () => { which = "log"; void load(); } }, "Log"),
      h("button", { role: "tab", id: "tab-events", "aria-selected": which === "events" ? "true" : "false", onclick: () => { which = "events"; void load(); } }, "Events"),
    );
    level.disabled = which === "events";
    if (which === "log") {
      const shown = filterLines(allLines(), f);
      replace(
        list,
        shown.length === 0
          ? h("p", { class: "empty" }, "No log lines match.")
          : shown.map((l) =>
              h(
                "div",
                { class: `log-line ${l.level}` },
                h("time", {}, clock(l.at)),
                h("span", { class: "level" }, l.level),
                h("span", { class: "who" }, l.profile ?? "chantryd"),
                h("span", { class: "msg" }, l.message),
              ),
            ),
      );
      count.textContent = `${shown.length} lines`;
    } else {
      const shown = filterEvents(allEvents(), f);
      replace(
        list,
        shown.length === 0
          ? h("p", { class: "empty" }, "No events match.")
          : shown.map((e) =>
              h(
                "div",
                { class: "log-line event" },
                h("time", {}, clock(e.at)),
                h("span", { class: "level" }, e.kind),
                h("span", { class: "who" }, e.profile ?? "chantryd"),
                h("span", { class: "msg" }, e.detail),
              ),
            ),
      );
      count.textContent = `${shown.length} events`;
    }
  };

  const load = async () => {
    replace(problem);
    try {
      if (which === "log") kept = await api.logs(null, 1000);
      else keptEvents = await api.events(null, 1000);
    } catch (e) {
      replace(problem, errorBox(asAppError(e), { user: store.info.user }));
    }
    draw();
  };

  text.addEventListener("input", () => { f.text = text.value; draw(); });
  level.addEventListener("change", () => { f.level = level.value; draw(); });
  profile.addEventListener("change", () => { f.profile = profile.value; draw(); });

  const exportButton = h(
    "button",
    {
      id: "log-export",
      onclick: async () => {
        const body = which === "log" ? exportText(filterLines(allLines(), f)) : exportEvents(filterEvents(allEvents(), f));
        try {
          const path = await api.saveText(which === "log" ? "chantry-log.txt" : "chantry-events.txt", body);
          if (path) store.notify({ kind: "ok", text: `Saved ${path}` });
        } catch (e) {
          replace(problem, errorBox(asAppError(e), { user: store.info.user }));
        }
      },
    },
    "Export…",
  );

  profiles();
  replace(
    root,
    h(
      "section",
      { class: "screen logs" },
      h("header", { class: "screen-head" }, h("h2", {}, "Logs"), count),
      tabs,
      h("div", { class: "filters" }, text, level, profile, exportButton),
      problem,
      list,
    ),
  );
  void load();
  return (what) => {
    if (what === "profiles") profiles();
    if ((what === "log" && which === "log") || (what === "event" && which === "events")) draw();
  };
}
