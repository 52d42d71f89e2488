import { describe, expect, it, vi } from "vitest";

import { Store } from "../src/store";
import { renderDetail, renderPeers } from "../src/views/detail";
import { errorBox } from "../src/views/parts";
import { morph } from "../src/dom";
import { type Actions, delegate, renderProfiles } from "../src/views/profiles";
import { profile, stats } from "./fixtures";

function actions(): Actions & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    toggle: (n, on) => calls.push(["toggle", n, on]),
    go: (s) => calls.push(["go", s]),
    retry: () => calls.push(["retry"]),
  };
}

function store(): Store {
  const s = new Store();
  s.info = { version: "0.1.0", socket: "/run/chantry/chantryd.sock", user: "alice" };
  s.link = { state: "up", socket: "/run/chantry/chantryd.sock", server: "chantryd 0.1.0", privilege: "member" };
  return s;
}

describe("the profiles screen", () => {
  it("shows each profile's state and a switch that toggles it", () => {
    const s = store();
    s.profiles = [
      profile({ name: "home", state: "up", stats: stats() }),
      profile({ name: "work", state: "down" }),
      profile({ name: "lab", state: "failed", detail: "the guardian exited with status 1" }),
    ];
    const a = actions();
    const el = renderProfiles(s);
    delegate(el, a);
    const cards = [...el.querySelectorAll<HTMLElement>("[data-profile]")];
    expect(cards.map((c) => [c.dataset.profile, c.dataset.shown])).toEqual([
      ["home", "connected"],
      ["work", "disconnected"],
      ["lab", "error"],
    ]);
    const home = cards[0];
    expect(home.querySelector(".badge .word")?.textContent).toBe("connected");
    expect(home.querySelector(".traffic")?.textContent).toBe("↑ 1.5 KiB  ↓ 2.0 MiB");
    expect(home.querySelector(".switch")?.getAttribute("aria-checked")).toBe("true");
    expect(cards[2].querySelector(".failure")?.textContent).toBe("the guardian exited with status 1");
    (home.querySelector(".switch") as HTMLButtonElement).click();
    (cards[1].querySelector(".switch") as HTMLButtonElement).click();
    expect(a.calls).toEqual([
      ["toggle", "home", true],
      ["toggle", "work", false],
    ]);
  });

  it("disables a switch while its request is on its way", () => {
    const s = store();
    s.profiles = [profile({ name: "home" })];
    s.pending.add("home");
    const a = actions();
    const el = renderProfiles(s);
    delegate(el, a);
    const sw = el.querySelector(".switch") as HTMLButtonElement;
    expect(sw.disabled).toBe(true);
    sw.click();
    expect(a.calls).toEqual([]);
  });

  it("invites an import when there is no profile", () => {
    const a = actions();
    const el = renderProfiles(store());
    delegate(el, a);
    expect(el.querySelector(".empty")?.textContent).toContain("No profiles yet.");
    (el.querySelector(".empty button") as HTMLButtonElement).click();
    expect(a.calls).toEqual([["go", { name: "import" }]]);
  });

  it("shows what to do instead of the list when the service is out of reach", () => {
    const s = store();
    s.link = { state: "down", socket: "/run/chantry/chantryd.sock", error: { kind: "permission_denied", socket: "/run/chantry/chantryd.sock", group: "chantry" } };
    s.profiles = [profile()];
    const a = actions();
    const el = renderProfiles(s);
    delegate(el, a);
    expect(el.querySelector("[data-profile]")).toBeNull();
    const box = el.querySelector<HTMLElement>(".error-box");
    expect(box?.dataset.error).toBe("permission");
    expect([...box!.querySelectorAll(".cmd")].map((c) => c.textContent)).toEqual(["sudo usermod -aG chantry alice"]);
    (box!.querySelector(".retry") as HTMLButtonElement).click();
    expect(a.calls).toEqual([["retry"]]);
  });
});

describe("the tunnel detail", () => {
  it("shows stage, peer, cathedral, last key exchange, the post-quantum keys, bytes and packets, and the plot", () => {
    const s = store();
    s.profiles = [
      profile({ name: "home", state: "up", stats: stats({ stage: "online", path: "relay", cathedral: "198.51.100.7:4500" }) }),
    ];
    const series = s.seriesOf("home");
    series.add({ at: 1000, tx: 0, rx: 0 });
    series.add({ at: 1001, tx: 1250, rx: 2500 });
    const el = renderDetail(s, "home", 1001);
    const fact = (id: string) => el.querySelector(`#fact-${id} dd`);
    expect(fact("stage")?.textContent).toBe("online · relay");
    expect(fact("peer")?.textContent).toBe("192.168.77.2:4500");
    expect(fact("cathedral")?.textContent).toBe("198.51.100.7:4500");
    expect(fact("rekey")?.textContent).toBe("1 min 15 s ago");
    expect(fact("keys")?.textContent).toBe("ML-KEM-1024 + X25519 · AES-256-GCM");
    expect(fact("tx")?.textContent).toBe("1.5 KiB · 12 packets");
    expect(fact("tx")?.getAttribute("data-value")).toBe("1536");
    expect(fact("tx")?.getAttribute("data-packets")).toBe("12");
    expect(fact("rx")?.getAttribute("data-value")).toBe(String(2 * 1024 * 1024));
    expect(fact("rx")?.getAttribute("data-packets")).toBe("10");
    expect(fact("mode")?.textContent).toBe("tunnel mode · interface chtun0 · MTU 1422");
    expect([...el.querySelectorAll(".throughput figcaption .key")].map((k) => k.textContent)).toEqual([
      "received 20.0 kbit/s",
      "sent 10.0 kbit/s",
    ]);
    const rx = el.querySelector("polyline[data-dir=rx]");
    // One rate, 2500 B/s, at the right edge, half way up an axis of 5000.
    expect(rx?.getAttribute("points")).toBe("900,100");
  });

  it("says so when the tunnel is down or the service sends no numbers", () => {
    const s = store();
    s.profiles = [profile({ name: "home", state: "down" })];
    expect(renderDetail(s, "home", 0).textContent).toContain("Not connected");
    s.profiles = [profile({ name: "home", state: "up" })];
    expect(renderDetail(s, "home", 0).textContent).toContain("has not sent this tunnel's numbers yet");
    expect(renderDetail(s, "gone", 0).textContent).toContain("There is no profile gone");
  });

  it("has an honest empty liturgy peers screen", () => {
    const s = store();
    s.profiles = [profile({ name: "home", state: "up", stats: stats() })];
    const el = renderPeers(s, "home");
    expect(el.querySelector("h2")?.textContent).toBe("Liturgy peers of home");
    expect(el.querySelector("#peers-empty")?.textContent).toContain("No liturgy peers to show.");
    expect(el.querySelector("#peers-empty")?.textContent).toContain("tunnels to one peer (192.168.77.2:4500)");
    expect(el.querySelectorAll("li").length).toBe(0);
  });
});

describe("redrawing in place", () => {
  it("keeps the nodes that stay and updates what changed", () => {
    const s = store();
    s.profiles = [profile({ name: "home", state: "down" })];
    const a = actions();
    const root = document.createElement("div");
    root.append(renderProfiles(s));
    delegate(root, a);
    const sw = root.querySelector(".switch") as HTMLButtonElement;
    s.profiles = [profile({ name: "home", state: "up", stats: stats() })];
    morph(root.firstElementChild!, renderProfiles(s));
    // The same button, now on; its click says so.
    expect(root.querySelector(".switch")).toBe(sw);
    expect(sw.getAttribute("aria-checked")).toBe("true");
    expect(root.querySelector("[data-profile=home]")?.getAttribute("data-shown")).toBe("connected");
    expect(root.querySelector(".traffic")?.textContent).toBe("↑ 1.5 KiB  ↓ 2.0 MiB");
    sw.click();
    expect(a.calls).toEqual([["toggle", "home", true]]);
    // And back: the traffic line empties.
    s.profiles = [profile({ name: "home", state: "down" })];
    morph(root.firstElementChild!, renderProfiles(s));
    expect(root.querySelector(".switch")).toBe(sw);
    expect(root.querySelector(".traffic")?.textContent).toBe("");
    expect(root.querySelectorAll(".switch").length).toBe(1);
  });
});

describe("the error box", () => {
  it("quotes the line at fault and shows the commands", () => {
    const el = errorBox(
      { kind: "bad_file", path: "/h/bad.conf", detail: "bad.conf:3: frobnicate: unknown keyword", line: 3, line_text: "frobnicate yes" },
      { user: "alice" },
    );
    expect(el.dataset.error).toBe("bad-file");
    expect(el.querySelector(".line")?.textContent).toBe(" line 3");
    expect(el.querySelector(".line-text")?.textContent).toBe("frobnicate yes");
    expect(el.querySelector(".retry")).toBeNull();
  });

  it("offers to forget a remembered passphrase that is wrong", () => {
    const forget = vi.fn();
    const el = errorBox(
      { kind: "refused", code: "passphrase", message: "wrong", line: null, file: null, line_text: null },
      { user: "alice", remembered: true },
      { forget },
    );
    (el.querySelector(".forget") as HTMLButtonElement).click();
    expect(forget).toHaveBeenCalledOnce();
  });
});
