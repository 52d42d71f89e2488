import { describe, expect, it } from "vitest";

import { niceMax, polyline } from "../src/plot";
import { exportText, filterEvents, filterLines } from "../src/views/logs";
import { stem } from "../src/views/import";

const lines = [
  { at: 1, level: "info", profile: null, message: "chantryd service ready" },
  { at: 2, level: "warn", profile: "home", message: "peer silent" },
  { at: 3, level: "error", profile: "home", message: "guardian exited" },
  { at: 4, level: "debug", profile: "work", message: "keepalive" },
];

describe("log filters", () => {
  it("filter by least level, profile and text", () => {
    const pick = (f: Parameters<typeof filterLines>[1]) => filterLines(lines, f).map((l) => l.at);
    expect(pick({ text: "", level: "", profile: "" })).toEqual([1, 2, 3, 4]);
    expect(pick({ text: "", level: "warn", profile: "" })).toEqual([2, 3]);
    expect(pick({ text: "", level: "", profile: "home" })).toEqual([2, 3]);
    expect(pick({ text: "", level: "", profile: "-" })).toEqual([1]);
    expect(pick({ text: "GUARDIAN", level: "", profile: "" })).toEqual([3]);
    const ev = [
      { at: 1, profile: "home", kind: "connect", detail: "connect requested" },
      { at: 2, profile: null, kind: "start", detail: "service started" },
    ];
    expect(filterEvents(ev, { text: "start", level: "error", profile: "" }).map((e) => e.at)).toEqual([2]);
  });

  it("export one line per log line with time, level and source", () => {
    expect(exportText(lines.slice(0, 2))).toBe(
      "1970-01-01T00:00:01.000Z INFO chantryd: chantryd service ready\n1970-01-01T00:00:02.000Z WARN home: peer silent\n",
    );
  });
});

describe("plot", () => {
  it("rounds the axis up and places points in the window", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(3)).toBe(5);
    expect(niceMax(1200)).toBe(2000);
    expect(niceMax(5000)).toBe(5000);
    const rates = [
      { at: 690, tx: 1, rx: 1 }, // before the window
      { at: 850, tx: 50, rx: 100 },
      { at: 1000, tx: 100, rx: 0 },
    ];
    expect(polyline(rates, (r) => r.tx, 1000, 300, 100, { width: 300, height: 100 })).toBe("150,50 300,0");
  });
});

describe("import names", () => {
  it("default to the file's name, made a valid profile name", () => {
    expect(stem("/home/alice/home.conf")).toBe("home");
    expect(stem("/x/my office.vicar")).toBe("my-office");
    expect(stem("noext")).toBe("noext");
  });
});
