// The app's commands and events (src-tauri/src/commands.rs, lib.rs).
// Everything goes through the Rust side: the front end never opens a
// socket or a file itself.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

import type {
  AppError,
  AppInfo,
  EventRecord,
  LinkState,
  LogLine,
  ProfileView,
  ServiceEvent,
  Settings,
  StatsSample,
  TunnelStatus,
} from "./types";

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  linkState: () => invoke<LinkState>("link_state"),
  profiles: () => invoke<ProfileView[]>("profiles"),
  retry: () => invoke<void>("retry"),
  connect: (name: string) => invoke<void>("connect", { name }),
  disconnect: (name: string) => invoke<void>("disconnect", { name }),
  status: (name: string) => invoke<TunnelStatus>("status", { name }),
  secretPath: (configPath: string) => invoke<string | null>("secret_path", { configPath }),
  importConf: (a: {
    name: string;
    configPath: string;
    keyPath: string | null;
    autoConnect: boolean;
    alwaysOn: boolean;
  }) => invoke<string>("import_conf", a),
  importVicar: (a: {
    name: string;
    vicarPath: string;
    passphrase: string | null;
    remember: boolean;
    config: string;
    autoConnect: boolean;
    alwaysOn: boolean;
  }) => invoke<{ remembered: boolean; keyring_error: AppError | null }>("import_vicar", a),
  remembered: (name: string) => invoke<boolean>("remembered", { name }),
  forgetPassphrase: (name: string) => invoke<void>("forget_passphrase", { name }),
  edit: (name: string, autoConnect: boolean | null, alwaysOn: boolean | null) =>
    invoke<void>("edit", { name, autoConnect, alwaysOn }),
  remove: (name: string) => invoke<void>("remove", { name }),
  logs: (name: string | null, limit: number) => invoke<LogLine[]>("logs", { name, limit }),
  events: (name: string | null, limit: number) =>
    invoke<EventRecord[]>("events", { name, limit }),
  history: (name: string, seconds: number) =>
    invoke<StatsSample[]>("history", { name, seconds }),
  getSettings: () => invoke<Settings>("get_settings"),
  setSettings: (settings: Settings) => invoke<void>("set_settings", { settings }),
  pickFile: (title: string) => invoke<string | null>("pick_file", { title }),
  saveText: (suggested: string, text: string) =>
    invoke<string | null>("save_text", { suggested, text }),
  autostart: () => invoke<boolean>("autostart"),
  setAutostart: (enabled: boolean) => invoke<void>("set_autostart", { enabled }),
};

export function onLink(f: (s: LinkState) => void): Promise<UnlistenFn> {
  return listen<LinkState>("link-state", (e) => f(e.payload));
}

export function onProfiles(f: (p: ProfileView[]) => void): Promise<UnlistenFn> {
  return listen<ProfileView[]>("profiles", (e) => f(e.payload));
}

export function onServiceEvent(f: (e: ServiceEvent) => void): Promise<UnlistenFn> {
  return listen<ServiceEvent>("service-event", (e) => f(e.payload));
}

export function onTrayError(f: (e: AppError) => void): Promise<UnlistenFn> {
  return listen<AppError>("tray-error", (e) => f(e.payload));
}

/** An invoke's rejection as an AppError (a string if Tauri itself failed). */
export function asAppError(e: unknown): AppError {
  if (e && typeof e === "object" && "kind" in e) return e as AppError;
  return { kind: "other", detail: String(e) };
}
