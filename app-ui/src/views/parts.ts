// Pieces the screens share: the state badge, the connect switch, the
// box that shows an error as what to do.

import { h } from "../dom";
import { explain, type Context } from "../errors";
import type { Shown } from "../state";
import type { AppError } from "../types";

const WORDS: Record<Shown, string> = {
  disconnected: "disconnected",
  connecting: "connecting",
  connected: "connected",
  error: "error",
};

/** A coloured dot and the state's word. */
export function badge(shown: Shown): HTMLElement {
  return h(
    "span",
    { class: `badge ${shown}`, "data-shown": shown },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "word" }, WORDS[shown]),
  );
}

/** The connect switch of a profile (acts through `data-action`). */
export function connectSwitch(name: string, on: boolean, busy: boolean): HTMLButtonElement {
  return h(
    "button",
    {
      class: `switch${on ? " on" : ""}`,
      role: "switch",
      "aria-checked": on ? "true" : "false",
      "aria-label": `${on ? "Disconnect" : "Connect"} ${name}`,
      "data-action": "toggle",
      "data-name": name,
      "data-on": on ? "true" : "false",
      disabled: busy,
    },
    h("span", { class: "knob", "aria-hidden": "true" }),
    h("span", { class: "label" }, on ? "On" : "Off"),
  );
}

/**
 * An error as a box: title, sentence, the file line, steps, commands.
 * Its "Try again" acts through `data-action="retry"`.
 */
export function errorBox(e: AppError, ctx: Context, extra: { forget?: () => void } = {}): HTMLElement {
  const a = explain(e, ctx);
  const steps = a.steps.map((s) => {
    const cmd = a.commands.find((c) => s.includes(c));
    if (!cmd) return h("li", {}, s);
    const [before, after] = s.split(cmd);
    return h("li", {}, before, h("code", { class: "cmd" }, cmd), after);
  });
  return h(
    "div",
    { class: "error-box", role: "alert", "data-error": a.id },
    h("h3", {}, a.title),
    h("p", { class: "why" }, a.body),
    a.where &&
      h(
        "div",
        { class: "where" },
        h("span", { class: "file" }, a.where.file),
        a.where.line != null && h("span", { class: "line" }, ` line ${a.where.line}`),
        a.where.text != null && h("pre", { class: "line-text" }, a.where.text),
      ),
    steps.length > 0 && h("ol", { class: "steps" }, steps),
    h(
      "div",
      { class: "actions" },
      a.retry && h("button", { class: "retry", "data-action": "retry" }, "Try again"),
      a.id === "passphrase" &&
        ctx.remembered &&
        extra.forget &&
        h("button", { class: "forget", onclick: extra.forget }, "Forget remembered passphrase"),
    ),
  );
}

/** "12:03:04" for unix seconds. */
export function clock(at: number): string {
  if (!at) return "";
  const d = new Date(at * 1000);
  return d.toLocaleTimeString([], { hour12: false });
}
