import type { ProfileView, TunnelStats } from "../src/types";

export function stats(over: Partial<TunnelStats> = {}): TunnelStats {
  return {
    stage: "online",
    path: "direct",
    peer: "192.168.77.2:4500",
    cathedral: null,
    since_key_exchange_s: 75,
    mtu: 1422,
    tx: { packets: 12, bytes: 1536 },
    rx: { packets: 10, bytes: 2 * 1024 * 1024 },
    ...over,
  };
}

export function profile(over: Partial<ProfileView> = {}): ProfileView {
  return {
    name: "home",
    instance: "chtun0",
    mode: "tunnel",
    auto_connect: false,
    always_on: false,
    state: "down",
    detail: null,
    stats: null,
    ...over,
  };
}
