// The Profiles screen: every profile with its state and one connect
// switch, and the service problem, if any, as what to do about it.

import { h } from "../dom";
import { formatBytes, isOn, shownOf } from "../state";
import type { Screen, Store } from "../store";
import { badge, connectSwitch, errorBox } from "./parts";

/** What the screens can ask the app to do. */
export interface Actions {
  toggle(name: string, on: boolean): void;
  go(screen: Screen): void;
  retry(): void;
}

/** Attributes of a button that opens `screen`. */
export function goTo(screen: Screen): Record<string, string> {
  return {
    "data-action": "go",
    "data-screen": screen.name,
    "data-target": "profile" in screen ? screen.profile : "",
  };
}

/**
 * Carries out the `data-action` of the element clicked in `root` (the
 * screens are redrawn in place, so their buttons hold no listeners).
 */
export function delegate(root: HTMLElement, actions: Actions): void {
  root.addEventListener("click", (ev) => {
    const el = (ev.target as Element | null)?.closest<HTMLElement>("[data-action]");
    if (!el || !root.contains(el) || (el as HTMLButtonElement).disabled) return;
    const d = el.dataset;
    switch (d.action) {
      case "toggle":
        if (d.name) actions.toggle(d.name, d.on === "true");
        break;
      case "retry":
        actions.retry();
        break;
      case "go": {
        const name = d.screen as Screen["name"];
        const profile = d.target ?? "";
        actions.go(name === "detail" || name === "peers" ? { name, profile } : ({ name } as Screen));
        break;
      }
    }
  });
}

/** The service link's problem as a full panel (null when connected). */
export function linkPanel(store: Store): HTMLElement | null {
  const l = store.link;
  if (l.state === "up") return null;
  if (l.state === "connecting") {
    return h("div", { class: "link-wait" }, `Reaching the Chantry service at ${l.socket}…`);
  }
  return errorBox(l.error, { user: store.info.user });
}

export function renderProfiles(store: Store): HTMLElement {
  const panel = linkPanel(store);
  const head = h("header", { class: "screen-head" }, h("h2", {}, "Profiles"));
  if (panel) return h("section", { class: "screen profiles" }, head, panel);
  if (store.profiles.length === 0) {
    return h(
      "section",
      { class: "screen profiles" },
      head,
      h(
        "div",
        { class: "empty" },
        h("p", {}, "No profiles yet."),
        h(
          "p",
          {},
          "Import a sanctum.conf with its key file, or a vicar profile from your cathedral's operator.",
        ),
        h("button", { class: "primary", ...goTo({ name: "import" }) }, "Import…"),
      ),
    );
  }
  const cards = store.profiles.map((p) => {
    const shown = shownOf(p);
    const on = isOn(p);
    // The same children in the same order whatever the state, so a
    // redraw in place keeps each node (the switch above all).
    const traffic = h(
      "span",
      { class: "traffic" },
      p.stats ? `↑ ${formatBytes(p.stats.tx.bytes)}  ↓ ${formatBytes(p.stats.rx.bytes)}` : "",
    );
    return h(
      "article",
      { class: `profile ${shown}`, "data-profile": p.name, "data-shown": shown },
      h(
        "button",
        { class: "open", title: `Details of ${p.name}`, ...goTo({ name: "detail", profile: p.name }) },
        h("span", { class: "name" }, p.name),
        h("span", { class: "sub" }, `${p.mode} · ${p.instance}`),
      ),
      badge(shown),
      traffic,
      connectSwitch(p.name, on, store.pending.has(p.name)),
      p.state === "failed" && p.detail ? h("p", { class: "failure" }, p.detail) : null,
    );
  });
  return h("section", { class: "screen profiles" }, head, h("div", { class: "cards" }, cards));
}
