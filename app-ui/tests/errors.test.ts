import { describe, expect, it } from "vitest";

import { explain, groupIn } from "../src/errors";
import type { AppError } from "../src/types";

const ctx = { user: "alice" };

function refused(code: string, message: string, extra: Partial<Record<"line" | "file" | "line_text", unknown>> = {}): AppError {
  return { kind: "refused", code, message, line: null, file: null, line_text: null, ...extra } as AppError;
}

describe("explain", () => {
  it("tells how to start a service that is not running", () => {
    const a = explain({ kind: "not_running", socket: "/run/chantry/chantryd.sock", detail: "No such file or directory (os error 2)" }, ctx);
    expect(a.id).toBe("not-running");
    expect(a.title).toBe("The Chantry service is not running");
    expect(a.body).toContain("/run/chantry/chantryd.sock");
    expect(a.commands).toEqual(["sudo systemctl start chantryd", "sudo systemctl enable --now chantryd"]);
    expect(a.retry).toBe(true);
  });

  it("names the group of the socket and the command that joins it", () => {
    const a = explain({ kind: "permission_denied", socket: "/run/chantry/chantryd.sock", group: "chantry" }, ctx);
    expect(a.id).toBe("permission");
    expect(a.body).toContain('"chantry" group');
    expect(a.commands).toEqual(["sudo usermod -aG chantry alice"]);
    expect(a.steps[1]).toContain("Log out and back in");
    const unknown = explain({ kind: "permission_denied", socket: "/s", group: null }, ctx);
    expect(unknown.commands).toEqual(["ls -l /s"]);
  });

  it("reads the group out of the service's refusal", () => {
    expect(groupIn("`import` needs root or membership in the `chantry-admin` group")).toBe("chantry-admin");
    expect(groupIn("uid 1000 may not use chantryd: it needs membership in the `chantry` group (or `chantry-admin`, or root)")).toBe("chantry");
    expect(groupIn("no group here")).toBeNull();
    const a = explain(refused("forbidden", "`import` needs root or membership in the `chantry-admin` group"), ctx);
    expect(a.id).toBe("forbidden");
    expect(a.title).toBe("You are not allowed to do this");
    expect(a.body).toBe("`import` needs root or membership in the `chantry-admin` group");
    expect(a.commands).toEqual(["sudo usermod -aG chantry-admin alice"]);
  });

  it("asks for the passphrase again, and offers to forget a remembered one", () => {
    const e = refused("passphrase", "vicar: wrong passphrase or altered file");
    const a = explain(e, ctx);
    expect(a.id).toBe("passphrase");
    expect(a.title).toBe("Wrong passphrase");
    expect(a.steps.some((s) => s.includes("forget it"))).toBe(false);
    const b = explain(e, { user: "alice", remembered: true });
    expect(b.steps.some((s) => s.includes("forget it"))).toBe(true);
  });

  it("points at the line of a file the service rejected", () => {
    const a = explain(
      refused("invalid", "home.conf:7: peer: not an address", { line: 7, file: "/home/alice/home.conf", line_text: "peer nowhere" }),
      ctx,
    );
    expect(a.id).toBe("bad-line");
    expect(a.title).toBe("The service rejected line 7");
    expect(a.where).toEqual({ file: "/home/alice/home.conf", line: 7, text: "peer nowhere" });
    expect(a.steps).toEqual(["Fix line 7 of /home/alice/home.conf, then import again."]);
  });

  it("points at the line of a file the app could not use", () => {
    const a = explain(
      { kind: "bad_file", path: "/home/alice/bad.conf", detail: "bad.conf:3: frobnicate: unknown keyword", line: 3, line_text: "frobnicate yes" },
      ctx,
    );
    expect(a.id).toBe("bad-file");
    expect(a.title).toBe("This file has a problem on line 3");
    expect(a.where).toEqual({ file: "/home/alice/bad.conf", line: 3, text: "frobnicate yes" });
    const b = explain({ kind: "bad_file", path: "/x.vicar", detail: "is 100 bytes long", line: null, line_text: null }, ctx);
    expect(b.title).toBe("This file cannot be used");
  });

  it("has an action for every refusal code", () => {
    const codes = ["forbidden", "not_found", "exists", "invalid", "passphrase", "busy", "version", "limit", "internal"];
    const ids = codes.map((c) => explain(refused(c, "m"), ctx).id);
    expect(ids).toEqual(["forbidden", "not-found", "exists", "invalid", "passphrase", "busy", "version", "limit", "internal"]);
  });

  it("explains keyring and protocol problems", () => {
    expect(explain({ kind: "keyring", detail: "no keyring" }, ctx).steps[1]).toContain("Remember passphrase");
    const p = explain({ kind: "protocol", detail: "chantryd closed the connection" }, ctx);
    expect(p.retry).toBe(true);
    expect(p.body).toBe("chantryd closed the connection");
  });
});
