import { describe, expect, it, vi } from "vitest";

import { Store } from "../src/store";
import { renderDetail, renderPeers } from "../src/views/detail";
import { errorBox } from "../src/views/parts";
import { type Actions, renderProfiles } from "../src/views/profiles";
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
    const el = renderProfiles(s, a);
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
    expect(cards[2].querySelector(".detail")?.textContent).toBe("the guardian exited with status 1");
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
    const el = renderProfiles(s, actions());
    expect((el.querySelector(".switch") as HTMLButtonElement).disabled).toBe(true);
  });

  it("invites an import when there is no profile", () => {
    const a = actions();
    const el = renderProfiles(store(), a);
    expect(el.querySelector(".empty")?.textContent).toContain("No profiles yet.");
    (el.querySelector(".empty button") as HTMLButtonElement).click();
    expect(a.calls).toEqual([["go", { name: "import" }]]);
  });

  it("shows what to do instead of the list when the service is out of reach", () => {
    const s = store();
    s.link = { state: "down", socket: "/run/chantry/chantryd.sock", error: { kind: "permission_denied", socket: "/run/chantry/chantryd.sock", group: "chantry" } };
    s.profiles = [profile()];
    const a = actions();
    const el = renderProfiles(s, a);
    expect(el.querySelector("[data-profile]")).toBeNull();
    const box = el.querySelector<HTMLElement>(".error-box");
    expect(box?.dataset.error).toBe("permission");
    expect([...box!.querySelectorAll(".cmd")].map((c) => c.textContent)).toEqual(["sudo usermod -aG chantry alice"]);
    (box!.querySelector(".retry") as HTMLButtonElement).click();
    expect(a.calls).toEqual([["retry"]]);
  });
});

describe("the tunnel detail", () => {
  it("shows stage, peer, cathedral, last key exchange, bytes and packets, and the plot", () => {
    const s = store();
    s.profiles = [
      profile({ name: "home", state: "up", stats: stats({ stage: "online", path: "relay", cathedral: "198.51.100.7:4500" }) }),
    ];
    const series = s.seriesOf("home");
    series.add({ at: 1000, tx: 0, rx: 0 });
    series.add({ at: 1001, tx: 1250, rx: 2500 });
    const el = renderDetail(s, "home", actions(), 1001);
    const fact = (id: string) => el.querySelector(`#fact-${id} dd`);
    expect(fact("stage")?.textContent).toBe("online · relay");
    expect(fact("peer")?.textContent).toBe("192.168.77.2:4500");
    expect(fact("cathedral")?.textContent).toBe("198.51.100.7:4500");
    expect(fact("rekey")?.textContent).toBe("1 min 15 s ago");
    expect(fact("tx-bytes")?.textContent).toBe("1.5 KiB · 12 packets");
    expect(fact("tx-bytes")?.getAttribute("data-value")).toBe("1536");
    expect(fact("rx-bytes")?.getAttribute("data-value")).toBe(String(2 * 1024 * 1024));
    expect(fact("rx-packets")?.textContent).toBe("10");
    expect([...el.querySelectorAll(".throughput figcaption .key")].map((k) => k.textContent)).toEqual([
      "received 20.0 kbit/s",
      "sent 10.0 kbit/s",
    ]);
    const rx = el.querySelector("polyline[data-dir=rx]");
    // One rate (2500 B/s = 20 kbit/s) at the right edge, at the top of a 20k axis... in bytes: top 5000 → y = 80.
    expect(rx?.getAttribute("points")).toBe("560,80");
  });

  it("says so when the tunnel is down or the service sends no numbers", () => {
    const s = store();
    s.profiles = [profile({ name: "home", state: "down" })];
    expect(renderDetail(s, "home", actions(), 0).textContent).toContain("Not connected");
    s.profiles = [profile({ name: "home", state: "up" })];
    expect(renderDetail(s, "home", actions(), 0).textContent).toContain("has not sent this tunnel's numbers yet");
    expect(renderDetail(s, "gone", actions(), 0).textContent).toContain("There is no profile gone");
  });

  it("has an honest empty liturgy peers screen", () => {
    const s = store();
    s.profiles = [profile({ name: "home", state: "up", stats: stats() })];
    const el = renderPeers(s, "home", actions());
    expect(el.querySelector("h2")?.textContent).toBe("Liturgy peers of home");
    expect(el.querySelector("#peers-empty")?.textContent).toContain("No liturgy peers to show.");
    expect(el.querySelector("#peers-empty")?.textContent).toContain("tunnels to one peer (192.168.77.2:4500)");
    expect(el.querySelectorAll("li").length).toBe(0);
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
