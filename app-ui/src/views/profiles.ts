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

/** The service link's problem as a full panel (null when connected). */
export function linkPanel(store: Store, actions: Actions): HTMLElement | null {
  const l = store.link;
  if (l.state === "up") return null;
  if (l.state === "connecting") {
    return h("div", { class: "link-wait" }, `Reaching the Chantry service at ${l.socket}…`);
  }
  return errorBox(l.error, { user: store.info.user }, { retry: () => actions.retry() });
}

export function renderProfiles(store: Store, actions: Actions): HTMLElement {
  const panel = linkPanel(store, actions);
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
        h("button", { class: "primary", onclick: () => actions.go({ name: "import" }) }, "Import…"),
      ),
    );
  }
  const cards = store.profiles.map((p) => {
    const shown = shownOf(p);
    const on = isOn(p);
    const traffic = p.stats
      ? h(
          "span",
          { class: "traffic" },
          `↑ ${formatBytes(p.stats.tx.bytes)}  ↓ ${formatBytes(p.stats.rx.bytes)}`,
        )
      : null;
    return h(
      "article",
      { class: `profile ${shown}`, "data-profile": p.name, "data-shown": shown },
      h(
        "button",
        {
          class: "open",
          title: `Details of ${p.name}`,
          onclick: () => actions.go({ name: "detail", profile: p.name }),
        },
        h("span", { class: "name" }, p.name),
        h("span", { class: "sub" }, `${p.mode} · ${p.instance}`),
      ),
      badge(shown),
      traffic,
      p.state === "failed" && p.detail ? h("p", { class: "detail" }, p.detail) : null,
      connectSwitch(p.name, on, store.pending.has(p.name), (n, o) => actions.toggle(n, o)),
    );
  });
  return h("section", { class: "screen profiles" }, head, h("div", { class: "cards" }, cards));
}
