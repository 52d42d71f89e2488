// Every error the app can meet, turned into what to do about it: a title,
// a sentence, and steps (commands to copy where a command is the fix).

import type { AppError } from "./types";

export interface Action {
  /** One line: what happened. */
  title: string;
  /** Why, in the service's or the system's words where they help. */
  body: string;
  /** What to do, in order. */
  steps: string[];
  /** Commands among the steps, to show as copyable code. */
  commands: string[];
  /** The file and line at fault, for a bad file. */
  where?: { file: string; line: number | null; text: string | null };
  /** The error is about the connection: offer "Try again". */
  retry: boolean;
  /** A short id for styling and tests (`not-running`, `permission`, ...). */
  id: string;
}

/** What the action needs to know about the user. */
export interface Context {
  /** The login name of the user running the app. */
  user: string;
  /** A passphrase is remembered for the profile at hand. */
  remembered?: boolean;
}

/** The group a refusal names: the service writes "... the `NAME` group". */
export function groupIn(message: string): string | null {
  const m = /`([^`]+)` group/.exec(message);
  return m ? m[1] : null;
}

function joinGroup(group: string, user: string): { steps: string[]; commands: string[] } {
  const cmd = `sudo usermod -aG ${group} ${user}`;
  return {
    steps: [
      `Ask an administrator to add you to the "${group}" group: ${cmd}`,
      "Log out and back in (a new group applies to new sessions), then start Chantry again.",
    ],
    commands: [cmd],
  };
}

/** The action for `e`. */
export function explain(e: AppError, ctx: Context): Action {
  switch (e.kind) {
    case "not_running": {
      const start = "sudo systemctl start chantryd";
      const enable = "sudo systemctl enable --now chantryd";
      return {
        id: "not-running",
        title: "The Chantry service is not running",
        body: `Chantry talks to chantryd, the system service that runs the tunnels, at ${e.socket}, and nothing answers there (${e.detail}).`,
        steps: [
          `Start the service: ${start}`,
          `To have it start with the computer: ${enable}`,
          "If chantryd is not installed, install the chantry package first.",
          "This window connects by itself as soon as the service runs.",
        ],
        commands: [start, enable],
        retry: true,
      };
    }
    case "permission_denied": {
      if (e.group) {
        const j = joinGroup(e.group, ctx.user);
        return {
          id: "permission",
          title: "You may not use the Chantry service yet",
          body: `The service's socket ${e.socket} is open to the "${e.group}" group only, and ${ctx.user} is not in it.`,
          ...j,
          retry: true,
        };
      }
      const ls = `ls -l ${e.socket}`;
      return {
        id: "permission",
        title: "You may not use the Chantry service yet",
        body: `The service's socket ${e.socket} is not open to ${ctx.user}.`,
        steps: [
          `See which group it is open to: ${ls}`,
          "Ask an administrator to add you to that group, then log out and back in.",
        ],
        commands: [ls],
        retry: true,
      };
    }
    case "refused":
      return refused(e, ctx);
    case "bad_file":
      return {
        id: "bad-file",
        title:
          e.line != null
            ? `This file has a problem on line ${e.line}`
            : "This file cannot be used",
        body: e.detail,
        steps: [
          e.line != null
            ? `Fix line ${e.line} of ${e.path} (or pick the right file), then import again.`
            : `Check ${e.path}, or pick another file, then import again.`,
        ],
        commands: [],
        where: { file: e.path, line: e.line, text: e.line_text },
        retry: false,
      };
    case "keyring":
      return {
        id: "keyring",
        title: "The keyring is not available",
        body: e.detail,
        steps: [
          "Unlock or start your keyring (GNOME Keyring, KWallet), then try again,",
          'or untick "Remember passphrase" and type it when you need it.',
        ],
        commands: [],
        retry: false,
      };
    case "protocol":
      return {
        id: "protocol",
        title: "The connection to the service broke",
        body: e.detail,
        steps: [
          "Chantry reconnects by itself; try again in a moment.",
          "If this keeps happening, the app and the service may be of different versions: update both.",
        ],
        commands: [],
        retry: true,
      };
    case "other":
      return {
        id: "other",
        title: "That did not work",
        body: e.detail,
        steps: [],
        commands: [],
        retry: false,
      };
  }
}

function refused(e: Extract<AppError, { kind: "refused" }>, ctx: Context): Action {
  const base = { body: e.message, commands: [] as string[], retry: false };
  switch (e.code) {
    case "forbidden": {
      const group = groupIn(e.message);
      if (!group) {
        return { ...base, id: "forbidden", title: "The service refused this", steps: [] };
      }
      return {
        ...base,
        id: "forbidden",
        title: "You are not allowed to do this",
        ...joinGroup(group, ctx.user),
      };
    }
    case "passphrase":
      return {
        ...base,
        id: "passphrase",
        title: "Wrong passphrase",
        body: "The vicar profile does not open with this passphrase (or the file was altered).",
        steps: [
          "Type the passphrase again: it is case-sensitive.",
          ...(ctx.remembered
            ? ["The remembered passphrase is wrong: forget it, then type the right one."]
            : []),
          "If it still fails, ask for a fresh copy of the vicar file.",
        ],
      };
    case "invalid":
      if (e.line != null) {
        const file = e.file ?? "the configuration";
        return {
          ...base,
          id: "bad-line",
          title: `The service rejected line ${e.line}`,
          steps: [`Fix line ${e.line} of ${file}, then import again.`],
          where: { file, line: e.line, text: e.line_text },
        };
      }
      return {
        ...base,
        id: "invalid",
        title: "The service rejected this",
        steps: ["Check what you sent, then try again."],
      };
    case "exists":
      return {
        ...base,
        id: "exists",
        title: "A profile of that name exists",
        steps: ["Choose another name, or remove the existing profile first (Settings)."],
      };
    case "not_found":
      return {
        ...base,
        id: "not-found",
        title: "No such profile",
        steps: ["It may have just been removed; the list shows what is there."],
      };
    case "busy":
      return {
        ...base,
        id: "busy",
        title: "The profile is busy",
        steps: ["Disconnect it first, then try again."],
      };
    case "version":
      return {
        ...base,
        id: "version",
        title: "The app and the service do not speak the same version",
        steps: ["Update Chantry so the app and chantryd come from the same release."],
        retry: true,
      };
    case "limit":
      return {
        ...base,
        id: "limit",
        title: "The service is busy",
        steps: ["Try again in a moment."],
        retry: true,
      };
    case "internal":
      return {
        ...base,
        id: "internal",
        title: "The service failed",
        steps: ["See Logs for what chantryd said, or: journalctl -u chantryd"],
        commands: ["journalctl -u chantryd"],
      };
  }
}
