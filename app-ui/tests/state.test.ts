import { describe, expect, it } from "vitest";

import { Series, formatBytes, formatDuration, formatRate, isOn, overall, shownOf, stageWords } from "../src/state";
import type { LinkState } from "../src/types";
import { profile, stats } from "./fixtures";

const up: LinkState = { state: "up", socket: "/s", server: "chantryd 0.1.0", privilege: "member" };

describe("shownOf", () => {
  it("maps the service's state and the key stage to four words", () => {
    expect(shownOf(profile({ state: "down" }))).toBe("disconnected");
    expect(shownOf(profile({ state: "connecting" }))).toBe("connecting");
    expect(shownOf(profile({ state: "failed" }))).toBe("error");
    expect(shownOf(profile({ state: "up", stats: stats({ stage: "keying" }) }))).toBe("connecting");
    expect(shownOf(profile({ state: "up", stats: stats({ stage: "online" }) }))).toBe("connected");
    expect(shownOf(profile({ state: "up", stats: stats({ stage: "rekeying" }) }))).toBe("connected");
    expect(shownOf(profile({ state: "up", stats: stats({ stage: "error" }) }))).toBe("error");
    // A service that sends no numbers: its word is taken.
    expect(shownOf(profile({ state: "up" }))).toBe("connected");
  });

  it("turns the switch on while up or connecting", () => {
    expect(isOn(profile({ state: "up" }))).toBe(true);
    expect(isOn(profile({ state: "connecting" }))).toBe(true);
    expect(isOn(profile({ state: "down" }))).toBe(false);
    expect(isOn(profile({ state: "failed" }))).toBe(false);
  });
});

describe("overall", () => {
  it("shows the most pressing state, and the service's absence as an error", () => {
    expect(overall(up, [])).toBe("disconnected");
    expect(overall(up, [profile(), profile({ name: "b", state: "up" })])).toBe("connected");
    expect(overall(up, [profile({ state: "up" }), profile({ name: "b", state: "connecting" })])).toBe("connecting");
    expect(overall(up, [profile({ state: "failed" }), profile({ name: "b", state: "connecting" })])).toBe("error");
    expect(overall({ state: "connecting", socket: "/s" }, [])).toBe("connecting");
    expect(overall({ state: "down", socket: "/s", error: { kind: "protocol", detail: "x" } }, [])).toBe("error");
  });
});

describe("formatting", () => {
  it("writes sizes, rates and durations for people", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(200 * 1024 * 1024)).toBe("200 MiB");
    expect(formatRate(100)).toBe("800 bit/s");
    expect(formatRate(125)).toBe("1.0 kbit/s");
    expect(formatRate(1250)).toBe("10.0 kbit/s");
    expect(formatRate(12_500_000)).toBe("100.0 Mbit/s");
    expect(formatDuration(9)).toBe("9 s");
    expect(formatDuration(120)).toBe("2 min");
    expect(formatDuration(125)).toBe("2 min 5 s");
    expect(formatDuration(3725)).toBe("1 h 2 min");
  });

  it("names the stage and the path", () => {
    expect(stageWords(null)).toEqual([]);
    expect(stageWords(stats({ stage: "online", path: "relay" }))).toEqual(["online", "relay"]);
    expect(stageWords(stats({ stage: "keying", path: null }))).toEqual(["keying"]);
  });
});

describe("Series", () => {
  it("turns counters into rates and keeps only the window", () => {
    const s = new Series(10);
    s.add({ at: 100, tx: 0, rx: 0 });
    s.add({ at: 101, tx: 1000, rx: 500 });
    s.add({ at: 101, tx: 5000, rx: 5000 }); // same second: ignored
    s.add({ at: 103, tx: 3000, rx: 4500 });
    expect(s.rates()).toEqual([
      { at: 101, tx: 1000, rx: 500 },
      { at: 103, tx: 1000, rx: 2000 },
    ]);
    s.add({ at: 112, tx: 4000, rx: 4600 });
    expect(s.all().map((p) => p.at)).toEqual([103, 112]);
  });

  it("starts over when the counters go back (a new tunnel)", () => {
    const s = new Series();
    s.add({ at: 1, tx: 900, rx: 900 });
    s.add({ at: 2, tx: 10, rx: 10 });
    expect(s.all()).toEqual([{ at: 2, tx: 10, rx: 10 }]);
  });
});
