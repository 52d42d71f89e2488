// The Settings screen: start at login (this user), each profile's
// auto-connect and kill switch, removing a profile, and the service's
// own settings.

import { api, asAppError } from "../api";
import { h, replace } from "../dom";
import type { Store } from "../store";
import type { Settings } from "../types";
import { errorBox } from "./parts";

function toggle(id: string, label: string, checked: boolean, disabled: boolean, change: (on: boolean) => void): HTMLElement {
  const input = h("input", { id, type: "checkbox", checked, disabled });
  input.addEventListener("change", () => change(input.checked));
  return h("label", { class: "check" }, input, ` ${label}`);
}

export function mountSettings(root: HTMLElement, store: Store): (what: string) => void {
  const problem = h("div", { class: "result", id: "settings-result" });
  const fail = (e: unknown) => replace(problem, errorBox(asAppError(e), { user: store.info.user }));
  const app = h("div", { class: "group" });
  const profiles = h("div", { class: "group", id: "settings-profiles" });
  const service = h("div", { class: "group", id: "settings-service" });

  const drawApp = async () => {
    let on = false;
    let err: unknown = null;
    try {
      on = await api.autostart();
    } catch (e) {
      err = e;
    }
    replace(
      app,
      h("h3", {}, "This computer"),
      toggle("autostart", "Start Chantry when I log in (in the tray, window hidden)", on, err != null, async (v) => {
        try {
          await api.setAutostart(v);
          replace(problem);
        } catch (e) {
          fail(e);
        }
        void drawApp();
      }),
      err != null && h("p", { class: "muted" }, `Start at login is not available here: ${String(asAppError(err).kind === "other" ? (asAppError(err) as { detail: string }).detail : asAppError(err).kind)}`),
    );
  };

  const drawProfiles = () => {
    replace(
      profiles,
      h("h3", {}, "Profiles"),
      store.profiles.length === 0
        ? h("p", { class: "muted" }, "No profiles.")
        : store.profiles.map((p) =>
            h(
              "div",
              { class: "profile-settings", "data-profile": p.name },
              h("h4", {}, p.name),
              toggle(`auto-${p.name}`, "Connect when the computer starts", p.auto_connect, false, async (v) => {
                try {
                  await api.edit(p.name, v, null);
                  replace(problem);
                } catch (e) {
                  fail(e);
                  drawProfiles();
                }
              }),
              toggle(`kill-${p.name}`, "Kill switch: no traffic outside the tunnel while it is down", p.always_on, false, async (v) => {
                try {
                  await api.edit(p.name, null, v);
                  replace(problem);
                } catch (e) {
                  fail(e);
                  drawProfiles();
                }
              }),
              h(
                "button",
                {
                  class: "danger",
                  id: `remove-${p.name}`,
                  disabled: p.state !== "down" && p.state !== "failed",
                  title: p.state === "down" || p.state === "failed" ? "" : "Disconnect it first",
                  onclick: async () => {
                    if (!window.confirm(`Remove the profile ${p.name} and its key files from this computer?`)) return;
                    try {
                      await api.remove(p.name);
                      replace(problem);
                    } catch (e) {
                      fail(e);
                    }
                  },
                },
                "Remove profile…",
              ),
            ),
          ),
    );
  };

  const drawService = async () => {
    let s: Settings | null = null;
    let err: unknown = null;
    try {
      s = await api.getSettings();
    } catch (e) {
      err = e;
    }
    if (!s) {
      replace(
        service,
        h("h3", {}, "Service"),
        errorBox(asAppError(err), { user: store.info.user }),
      );
      return;
    }
    const cur = s;
    const save = async (next: Settings) => {
      try {
        await api.setSettings(next);
        replace(problem);
      } catch (e) {
        fail(e);
      }
      void drawService();
    };
    const level = h(
      "select",
      { id: "service-log-level" },
      ["error", "warn", "info", "debug"].map((l) => h("option", { value: l, selected: l === cur.log_level }, l)),
    );
    level.addEventListener("change", () => void save({ ...cur, log_level: level.value }));
    replace(
      service,
      h("h3", {}, "Service (all users of this computer)"),
      toggle("reconnect", "Reconnect tunnels when the network changes or the computer wakes up", cur.reconnect_on_network_change, false, (v) =>
        void save({ ...cur, reconnect_on_network_change: v }),
      ),
      h("label", { class: "field inline" }, h("span", { class: "label" }, "Log level"), level),
    );
  };

  replace(
    root,
    h("section", { class: "screen settings" }, h("header", { class: "screen-head" }, h("h2", {}, "Settings")), problem, app, profiles, service),
  );
  void drawApp();
  drawProfiles();
  void drawService();
  return (what) => {
    if (what === "profiles") drawProfiles();
  };
}
