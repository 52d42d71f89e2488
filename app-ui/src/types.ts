// The JSON the app's Rust side sends: chantry_core::ipc's types
// (app-core/src/ipc/message.rs, stats.rs) and the app's own (error.rs,
// link.rs in src-tauri). Field names are the JSON's.

export type TunnelState = "down" | "connecting" | "up" | "failed";
export type Stage = "keying" | "online" | "rekeying" | "error";
export type PathKind = "direct" | "relay";
export type Privilege = "none" | "member" | "admin";
export type ErrorCode =
  | "forbidden"
  | "not_found"
  | "exists"
  | "invalid"
  | "passphrase"
  | "busy"
  | "version"
  | "limit"
  | "internal";

export interface Counters {
  packets: number;
  bytes: number;
}

export interface TunnelStats {
  stage: Stage;
  path?: PathKind | null;
  peer?: string | null;
  cathedral?: string | null;
  since_key_exchange_s?: number | null;
  mtu: number;
  tx: Counters;
  rx: Counters;
}

/** A profile and what the service last said of its tunnel. */
export interface ProfileView {
  name: string;
  instance: string;
  mode: string;
  auto_connect: boolean;
  always_on: boolean;
  state: TunnelState;
  detail: string | null;
  stats: TunnelStats | null;
}

export interface TunnelStatus {
  name: string;
  state: TunnelState;
  detail?: string | null;
  pid?: number | null;
  stats?: TunnelStats | null;
}

export type AppError =
  | { kind: "not_running"; socket: string; detail: string }
  | { kind: "permission_denied"; socket: string; group: string | null }
  | {
      kind: "refused";
      code: ErrorCode;
      message: string;
      line: number | null;
      file: string | null;
      line_text: string | null;
    }
  | {
      kind: "bad_file";
      path: string;
      detail: string;
      line: number | null;
      line_text: string | null;
    }
  | { kind: "keyring"; detail: string }
  | { kind: "protocol"; detail: string }
  | { kind: "other"; detail: string };

export type LinkState =
  | { state: "connecting"; socket: string }
  | { state: "up"; socket: string; server: string; privilege: Privilege }
  | { state: "down"; socket: string; error: AppError };

export interface LogLine {
  at: number;
  level: string;
  profile?: string | null;
  message: string;
}

export interface EventRecord {
  at: number;
  profile?: string | null;
  kind: string;
  detail: string;
}

export interface StatsSample {
  at: number;
  tx: Counters;
  rx: Counters;
}

export interface Settings {
  reconnect_on_network_change: boolean;
  log_level: string;
}

export interface AppInfo {
  version: string;
  socket: string;
  user: string;
}

/** An event of the service's subscription stream, as it sent it. */
export type ServiceEvent =
  | ({ event: "state" } & TunnelStatus)
  | ({ event: "log" } & LogLine)
  | { event: "stats"; name: string; at: number; stats: TunnelStats }
  | ({ event: "recorded" } & EventRecord);
