// The tunnel detail: stage, peer, cathedral, time since the last key
// exchange, bytes and packets each way, and the throughput plot; and the
// liturgy peers screen.

import { h } from "../dom";
import { renderPlot } from "../plot";
import { formatBytes, formatDuration, formatRate, isOn, shownOf, stageWords } from "../state";
import type { Store } from "../store";
import { badge, connectSwitch } from "./parts";
import { goTo, linkPanel } from "./profiles";

function fact(
  label: string,
  id: string,
  value: Node | string,
  raw?: number,
  packets?: number,
): HTMLElement {
  return h(
    "div",
    { class: "fact", id: `fact-${id}` },
    h("dt", {}, label),
    h("dd", { "data-value": raw ?? null, "data-packets": packets ?? null }, value),
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function renderDetail(store: Store, name: string, now: number): HTMLElement {
  const back = h("button", { class: "back", ...goTo({ name: "profiles" }) }, "← Profiles");
  const panel = linkPanel(store);
  if (panel) return h("section", { class: "screen detail" }, back, panel);
  const p = store.profile(name);
  if (!p) {
    return h("section", { class: "screen detail" }, back, h("p", { class: "empty" }, `There is no profile ${name} (any more).`));
  }
  const shown = shownOf(p);
  const s = p.stats;
  const head = h(
    "header",
    { class: "screen-head" },
    back,
    h("h2", {}, p.name),
    badge(shown),
    connectSwitch(p.name, isOn(p), store.pending.has(p.name)),
  );
  const facts: HTMLElement[] = [
    fact("Profile", "mode", `${p.mode} mode · interface ${p.instance}${s ? ` · MTU ${s.mtu}` : ""}`, s?.mtu),
  ];
  if (s) {
    facts.push(
      fact("Stage", "stage", h("span", { class: "stage" }, stageWords(s).join(" · "))),
      fact("Peer", "peer", s.peer ?? "not known yet"),
      fact("Cathedral", "cathedral", s.cathedral ?? "none"),
      fact(
        "Last key exchange",
        "rekey",
        s.since_key_exchange_s != null ? `${formatDuration(s.since_key_exchange_s)} ago` : "not yet",
        s.since_key_exchange_s ?? undefined,
      ),
      // Every sanctum session key mixes the shared secret with both
      // exchanges; there is no classical-only mode to report.
      fact("Keys", "keys", "ML-KEM-1024 + X25519 · AES-256-GCM"),
      fact("Sent", "tx", `${formatBytes(s.tx.bytes)} · ${plural(s.tx.packets, "packet")}`, s.tx.bytes, s.tx.packets),
      fact("Received", "rx", `${formatBytes(s.rx.bytes)} · ${plural(s.rx.packets, "packet")}`, s.rx.bytes, s.rx.packets),
    );
  }
  const rates = store.seriesOf(p.name).rates();
  const last = rates[rates.length - 1];
  const body: (HTMLElement | null)[] = [
    p.detail ? h("p", { class: "failure" }, p.detail) : null,
    h("dl", { class: "facts" }, facts),
  ];
  if (isOn(p)) {
    body.push(
      h(
        "figure",
        { class: "throughput" },
        renderPlot(rates, now),
        h(
          "figcaption",
          {},
          h("span", { class: "key rx" }, `received ${last ? formatRate(last.rx) : "–"}`),
          h("span", { class: "key tx" }, `sent ${last ? formatRate(last.tx) : "–"}`),
        ),
      ),
    );
    if (!s) body.push(h("p", { class: "muted" }, "The service has not sent this tunnel's numbers yet."));
  } else {
    body.push(h("p", { class: "muted" }, "Not connected: switch it on to see its peer, keys and traffic."));
  }
  body.push(
    h(
      "p",
      {},
      h("button", { class: "link", id: "to-peers", ...goTo({ name: "peers", profile: p.name }) }, "Liturgy peers →"),
    ),
  );
  return h("section", { class: "screen detail", "data-profile": p.name }, head, ...body);
}

export function renderPeers(store: Store, name: string): HTMLElement {
  const back = h("button", { class: "back", ...goTo({ name: "detail", profile: name }) }, `← ${name}`);
  const p = store.profile(name);
  const head = h("header", { class: "screen-head" }, back, h("h2", {}, `Liturgy peers of ${name}`));
  const explain =
    p && p.mode !== "liturgy"
      ? `${name} is a ${p.mode}-mode profile: it tunnels to one peer${p.stats?.peer ? ` (${p.stats.peer})` : ""} and takes part in no liturgy.`
      : null;
  return h(
    "section",
    { class: "screen peers" },
    head,
    h(
      "div",
      { class: "empty", id: "peers-empty" },
      h("p", {}, "No liturgy peers to show."),
      explain && h("p", {}, explain),
      h(
        "p",
        { class: "muted" },
        "This version of chantryd does not report liturgy peers yet; once it discovers them through a cathedral they are listed here with their address and state.",
      ),
    ),
  );
}
