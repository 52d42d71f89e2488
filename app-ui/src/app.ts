// The window: a side bar of screens, the current screen, a notice line.
// Fed by the Rust side's events; every action is one of its commands.

import { api, asAppError, onLink, onProfiles, onServiceEvent, onTrayError } from "./api";
import { h, morph, replace } from "./dom";
import { overall } from "./state";
import { type Screen, Store } from "./store";
import { renderDetail, renderPeers } from "./views/detail";
import { mountImport } from "./views/import";
import { mountLogs } from "./views/logs";
import { badge, errorBox } from "./views/parts";
import { type Actions, delegate, renderProfiles } from "./views/profiles";
import { mountSettings } from "./views/settings";

/** Seconds of history asked for when a tunnel's detail opens. */
const HISTORY_S = 300;

export async function start(root: HTMLElement): Promise<void> {
  const store = new Store();
  const screenEl = h("main", { id: "screen" });
  const noticeEl = h("div", { id: "notice", "aria-live": "polite" });
  const summary = h("div", { class: "summary", id: "summary" });
  const nav = h("nav", { class: "sidebar" });
  let mounted: { screen: string; update?: (what: string) => void } | null = null;

  const actions: Actions = {
    toggle: async (name, on) => {
      store.pending.add(name);
      store.changed("pending");
      try {
        if (on) await api.disconnect(name);
        else await api.connect(name);
        store.notify(null);
      } catch (e) {
        store.notify({ kind: "error", error: asAppError(e) });
      } finally {
        store.pending.delete(name);
        store.changed("pending");
      }
    },
    go: (screen: Screen) => {
      store.notify(null);
      store.go(screen);
      if (screen.name === "detail") {
        api
          .history(screen.profile, HISTORY_S)
          .then((samples) => store.addHistory(screen.profile, samples))
          .catch(() => undefined);
      }
    },
    retry: () => void api.retry(),
  };

  const navItems: [Screen["name"], string][] = [
    ["profiles", "Profiles"],
    ["import", "Import"],
    ["logs", "Logs"],
    ["settings", "Settings"],
  ];
  const drawNav = () => {
    const cur = store.screen.name === "detail" || store.screen.name === "peers" ? "profiles" : store.screen.name;
    replace(
      nav,
      h("div", { class: "brand" }, h("img", { src: "/icon.svg", alt: "" }), h("span", {}, "Chantry")),
      navItems.map(([name, label]) =>
        h(
          "button",
          {
            class: `nav${cur === name ? " current" : ""}`,
            id: `nav-${name}`,
            onclick: () => actions.go({ name } as Screen),
          },
          label,
        ),
      ),
      summary,
    );
  };

  const drawSummary = () => {
    const l = store.link;
    replace(
      summary,
      badge(overall(l, store.profiles)),
      h(
        "small",
        { class: "muted" },
        l.state === "up" ? `${l.server} · ${l.privilege}` : l.state === "down" ? "service not reachable" : "connecting…",
      ),
    );
  };

  const drawNotice = () => {
    const n = store.notice;
    if (!n) return replace(noticeEl);
    if (n.kind === "ok") return replace(noticeEl, h("p", { class: "ok" }, n.text));
    replace(
      noticeEl,
      h(
        "div",
        { class: "notice-error" },
        errorBox(n.error, { user: store.info.user }),
        h("button", { class: "dismiss", onclick: () => store.notify(null) }, "Dismiss"),
      ),
    );
  };

  const drawScreen = (what: string) => {
    const s = store.screen;
    const now = Math.floor(Date.now() / 1000);
    // Drawn screens are morphed in place: what stays keeps its node.
    const draw = (el: HTMLElement) => {
      const cur = screenEl.firstElementChild;
      if (cur && mounted?.screen === s.name && what !== "screen") morph(cur, el);
      else replace(screenEl, el);
      mounted = { screen: s.name };
    };
    switch (s.name) {
      case "profiles":
        return draw(renderProfiles(store));
      case "detail":
        return draw(renderDetail(store, s.profile, now));
      case "peers":
        return draw(renderPeers(store, s.profile));
      default:
        if (mounted?.screen === s.name && what !== "screen") {
          mounted.update?.(what);
          return;
        }
        if (s.name === "import") {
          const update = mountImport(screenEl, store, (name, after) => {
            store.go({ name: "profiles" });
            if (after?.keyring_error) {
              // Imported, but the passphrase could not be kept.
              store.notify({ kind: "error", error: after.keyring_error });
            } else {
              const kept = after?.remembered ? " Its passphrase is remembered in your keyring." : "";
              store.notify({ kind: "ok", text: `Imported ${name}.${kept}` });
            }
          });
          mounted = { screen: "import", update };
        } else if (s.name === "logs") {
          mounted = { screen: "logs", update: mountLogs(screenEl, store) };
        } else {
          mounted = { screen: "settings", update: mountSettings(screenEl, store) };
        }
    }
  };

  store.subscribe((what) => {
    if (what === "notice") return drawNotice();
    if (what === "screen") drawNav();
    if (what === "link" || what === "profiles" || what === "stats") drawSummary();
    if (what === "link" && store.link.state !== "up") store.pending.clear();
    drawScreen(what);
  });

  replace(root, nav, h("div", { class: "content" }, noticeEl, screenEl));
  delegate(root, actions);
  drawNav();

  await onLink((l) => store.setLink(l));
  await onProfiles((p) => store.setProfiles(p));
  await onServiceEvent((e) => store.apply(e));
  await onTrayError((e) => store.notify({ kind: "error", error: e }));
  store.info = await api.appInfo();
  store.setLink(await api.linkState());
  store.setProfiles(await api.profiles());
  // The detail's "time since" and plot move on even without new events.
  setInterval(() => {
    if (store.screen.name === "detail") drawScreen("tick");
  }, 1000);
}
