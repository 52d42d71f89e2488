// The Import screen: a sanctum.conf with its key file, or a vicar profile
// with its passphrase (remembered in the OS keyring if asked).

import { api, asAppError } from "../api";
import { h, replace } from "../dom";
import type { Store } from "../store";
import type { AppError } from "../types";
import { errorBox } from "./parts";

/** The file name without directory and extension: a default profile name. */
export function stem(path: string): string {
  const base = path.split("/").pop() ?? "";
  const dot = base.lastIndexOf(".");
  return (dot > 0 ? base.slice(0, dot) : base).replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 32);
}

function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "label" }, label), input, hint && h("small", { class: "hint" }, hint));
}

function fileRow(input: HTMLInputElement, title: string): HTMLElement {
  return h(
    "div",
    { class: "file-row" },
    input,
    h(
      "button",
      {
        type: "button",
        class: "browse",
        onclick: async () => {
          const p = await api.pickFile(title).catch(() => null);
          if (p) {
            input.value = p;
            input.dispatchEvent(new Event("change"));
          }
        },
      },
      "Browse…",
    ),
  );
}

/** Mounts the screen; returns a function to call when the store changes. */
export function mountImport(
  root: HTMLElement,
  store: Store,
  done: (name: string, after?: { remembered: boolean; keyring_error: AppError | null }) => void,
): (what: string) => void {
  let tab: "conf" | "vicar" = "conf";
  const result = h("div", { class: "result", id: "import-result" });
  const showError = (e: AppError, remembered = false, forget?: () => void) => {
    replace(result, errorBox(e, { user: store.info.user, remembered }, { forget }));
    result.scrollIntoView({ block: "nearest" });
  };

  // sanctum.conf
  const confPath = h("input", { id: "conf-path", type: "text", placeholder: "/path/to/sanctum.conf", spellcheck: "false" });
  const keyPath = h("input", { id: "key-path", type: "text", placeholder: "taken from its `secret` line", spellcheck: "false" });
  const confName = h("input", { id: "conf-name", type: "text", placeholder: "the file's name", maxlength: 32 });
  const confAuto = h("input", { id: "conf-auto", type: "checkbox" });
  const confKill = h("input", { id: "conf-kill", type: "checkbox" });
  confPath.addEventListener("change", async () => {
    const path = confPath.value.trim();
    if (!path) return;
    if (!confName.value) confName.placeholder = stem(path);
    try {
      const key = await api.secretPath(path);
      if (key && !keyPath.value) keyPath.value = key;
      replace(result);
    } catch (e) {
      showError(asAppError(e));
    }
  });
  const confForm = h(
    "form",
    { class: "import-form", id: "import-conf" },
    field("Configuration (sanctum.conf)", fileRow(confPath, "Choose a sanctum.conf")),
    field("Shared secret (key file)", fileRow(keyPath, "Choose the key file"), "Filled in from the configuration's `secret` line; pick another file to override."),
    field("Profile name", confName, "Letters, digits, - and _; up to 32."),
    h("label", { class: "check" }, confAuto, " Connect when the computer starts"),
    h("label", { class: "check" }, confKill, " Kill switch: block traffic outside the tunnel while it is down"),
    h("button", { type: "submit", class: "primary", id: "import-conf-go" }, "Import"),
  );
  confForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const go = confForm.querySelector<HTMLButtonElement>("button[type=submit]");
    if (go) go.disabled = true;
    replace(result, h("p", { class: "muted" }, "Importing…"));
    try {
      const configPath = confPath.value.trim();
      const name = await api.importConf({
        name: confName.value.trim() || stem(configPath),
        configPath,
        keyPath: keyPath.value.trim() || null,
        autoConnect: confAuto.checked,
        alwaysOn: confKill.checked,
      });
      replace(result);
      done(name);
    } catch (e) {
      showError(asAppError(e));
    } finally {
      if (go) go.disabled = false;
    }
  });

  // vicar
  const vicarPath = h("input", { id: "vicar-path", type: "text", placeholder: "/path/to/profile.vicar", spellcheck: "false" });
  const pass = h("input", { id: "vicar-pass", type: "password", autocomplete: "off" });
  const remember = h("input", { id: "vicar-remember", type: "checkbox" });
  const vicarName = h("input", { id: "vicar-name", type: "text", maxlength: 32 });
  const vicarConf = h("textarea", {
    id: "vicar-conf",
    rows: 6,
    spellcheck: "false",
    placeholder: "instance home0\nlocal 0.0.0.0:4500\ntunnel 10.0.0.2/30 1422",
  });
  const vicarAuto = h("input", { id: "vicar-auto", type: "checkbox" });
  const vicarKill = h("input", { id: "vicar-kill", type: "checkbox" });
  const rememberedNote = h("small", { class: "hint", id: "vicar-remembered" });
  let remembered = false;
  const vicarNameOf = () => vicarName.value.trim() || vicarName.placeholder;
  const checkRemembered = async () => {
    const name = vicarNameOf();
    remembered = name ? await api.remembered(name).catch(() => false) : false;
    pass.placeholder = remembered ? "remembered: leave empty to use it" : "";
    replace(
      rememberedNote,
      remembered &&
        h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: async () => {
              await api.forgetPassphrase(name).catch((e) => showError(asAppError(e)));
              await checkRemembered();
            },
          },
          "Forget the remembered passphrase",
        ),
    );
  };
  vicarName.addEventListener("change", checkRemembered);
  vicarPath.addEventListener("change", () => {
    // The file's name is the default, shown until a name is typed.
    vicarName.placeholder = stem(vicarPath.value.trim());
    if (!vicarName.value) void checkRemembered();
  });
  const vicarForm = h(
    "form",
    { class: "import-form", id: "import-vicar" },
    field("Vicar profile", fileRow(vicarPath, "Choose a vicar profile")),
    field("Passphrase", pass),
    h("label", { class: "check" }, remember, " Remember the passphrase (in this computer's keyring)"),
    rememberedNote,
    field("Profile name", vicarName),
    field(
      "The rest of the configuration",
      vicarConf,
      "The sanctum.conf lines a vicar profile does not hold: instance, local, tunnel, routes. The cathedral and keys come from the vicar file.",
    ),
    h("label", { class: "check" }, vicarAuto, " Connect when the computer starts"),
    h("label", { class: "check" }, vicarKill, " Kill switch: block traffic outside the tunnel while it is down"),
    h("button", { type: "submit", class: "primary", id: "import-vicar-go" }, "Import"),
  );
  vicarForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    replace(result, h("p", { class: "muted" }, "Opening the vicar profile…"));
    const name = vicarNameOf();
    try {
      const after = await api.importVicar({
        name,
        vicarPath: vicarPath.value.trim(),
        passphrase: pass.value || null,
        remember: remember.checked,
        config: vicarConf.value,
        autoConnect: vicarAuto.checked,
        alwaysOn: vicarKill.checked,
      });
      pass.value = "";
      replace(result);
      done(name, after);
    } catch (e) {
      const err = asAppError(e);
      showError(err, remembered, async () => {
        await api.forgetPassphrase(name).catch(() => undefined);
        await checkRemembered();
        replace(result);
      });
    }
  });

  const tabs = h("div", { class: "tabs", role: "tablist" });
  const body = h("div", { class: "tab-body" });
  const draw = () => {
    replace(
      tabs,
      h("button", { role: "tab", id: "tab-conf", "aria-selected": tab === "conf" ? "true" : "false", onclick: () => { tab = "conf"; draw(); } }, "sanctum.conf + key file"),
      h("button", { role: "tab", id: "tab-vicar", "aria-selected": tab === "vicar" ? "true" : "false", onclick: () => { tab = "vicar"; draw(); } }, "Vicar profile"),
    );
    replace(body, tab === "conf" ? confForm : vicarForm);
    replace(result);
  };
  draw();
  const note = h("p", { class: "muted", id: "import-note" });
  const drawNote = () =>
    replace(
      note,
      store.link.state === "up" && store.link.privilege === "member"
        ? "Importing needs the service's admin group (or root); the service will say which group if you are not in it."
        : null,
    );
  drawNote();
  replace(
    root,
    h(
      "section",
      { class: "screen import" },
      h("header", { class: "screen-head" }, h("h2", {}, "Import a profile")),
      note,
      tabs,
      body,
      result,
    ),
  );
  return (what) => {
    if (what === "link") drawNote();
  };
}
