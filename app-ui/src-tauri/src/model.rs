//! What a person sees of a tunnel: four states, from the service's state
//! and key stage, and one of them for the whole app (the tray icon). The
//! front end applies the same rules (src/state.ts); both are tested.

use chantry_core::ipc::{Stage, TunnelState};

use crate::link::{LinkState, ProfileView};

/// A tunnel, or the whole app, as the tray shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shown {
    /// Not running.
    Disconnected,
    /// Started, not yet carrying traffic (roles starting, first key
    /// exchange).
    Connecting,
    /// Carrying traffic.
    Connected,
    /// Failed, or the service cannot be reached.
    Error,
}

impl Shown {
    /// The word the tray and the window use.
    pub fn word(self) -> &'static str {
        match self {
            Shown::Disconnected => "disconnected",
            Shown::Connecting => "connecting",
            Shown::Connected => "connected",
            Shown::Error => "error",
        }
    }
}

/// How one profile's tunnel is shown.
pub fn shown(p: &ProfileView) -> Shown {
    match p.info.state {
        TunnelState::Down => Shown::Disconnected,
        TunnelState::Connecting => Shown::Connecting,
        TunnelState::Failed => Shown::Error,
        TunnelState::Up => match p.stats.as_ref().map(|s| s.stage) {
            Some(Stage::Keying) => Shown::Connecting,
            Some(Stage::Error) => Shown::Error,
            Some(Stage::Online | Stage::Rekeying) | None => Shown::Connected,
        },
    }
}

/// How the app as a whole is shown: the service out of reach or any
/// tunnel failed is an error; else any tunnel still connecting makes it
/// connecting, any connected makes it connected.
pub fn overall(link: &LinkState, profiles: &[ProfileView]) -> Shown {
    match link {
        LinkState::Down { .. } => return Shown::Error,
        LinkState::Connecting { .. } => return Shown::Connecting,
        LinkState::Up { .. } => {}
    }
    let states: Vec<Shown> = profiles.iter().map(shown).collect();
    [Shown::Error, Shown::Connecting, Shown::Connected]
        .into_iter()
        .find(|s| states.contains(s))
        .unwrap_or(Shown::Disconnected)
}

#[cfg(test)]
mod tests {
    use chantry_core::ipc::{Counters, Privilege, ProfileInfo, TunnelStats};

    use super::*;
    use crate::error::AppError;

    fn view(name: &str, state: TunnelState, stage: Option<Stage>) -> ProfileView {
        ProfileView {
            info: ProfileInfo {
                name: name.into(),
                instance: "t0".into(),
                mode: "tunnel".into(),
                auto_connect: false,
                always_on: false,
                state,
            },
            detail: None,
            stats: stage.map(|stage| TunnelStats {
                stage,
                path: None,
                peer: None,
                cathedral: None,
                since_key_exchange_s: None,
                mtu: 1422,
                tx: Counters::default(),
                rx: Counters::default(),
            }),
        }
    }

    fn up() -> LinkState {
        LinkState::Up {
            socket: "/run/chantry/chantryd.sock".into(),
            server: "chantryd".into(),
            privilege: Privilege::Member,
        }
    }

    #[test]
    fn a_tunnel_is_connected_once_keyed() {
        assert_eq!(
            shown(&view("a", TunnelState::Up, Some(Stage::Keying))),
            Shown::Connecting
        );
        assert_eq!(
            shown(&view("a", TunnelState::Up, Some(Stage::Online))),
            Shown::Connected
        );
        assert_eq!(
            shown(&view("a", TunnelState::Up, Some(Stage::Rekeying))),
            Shown::Connected
        );
        assert_eq!(
            shown(&view("a", TunnelState::Up, Some(Stage::Error))),
            Shown::Error
        );
        // A service that sends no stats: its word is taken.
        assert_eq!(shown(&view("a", TunnelState::Up, None)), Shown::Connected);
        assert_eq!(
            shown(&view("a", TunnelState::Down, None)),
            Shown::Disconnected
        );
        assert_eq!(shown(&view("a", TunnelState::Failed, None)), Shown::Error);
    }

    #[test]
    fn the_app_shows_the_most_pressing_state() {
        let down = view("a", TunnelState::Down, None);
        let online = view("b", TunnelState::Up, Some(Stage::Online));
        let keying = view("c", TunnelState::Up, Some(Stage::Keying));
        let failed = view("d", TunnelState::Failed, None);
        assert_eq!(overall(&up(), &[]), Shown::Disconnected);
        assert_eq!(
            overall(&up(), std::slice::from_ref(&down)),
            Shown::Disconnected
        );
        assert_eq!(
            overall(&up(), &[down.clone(), online.clone()]),
            Shown::Connected
        );
        assert_eq!(
            overall(&up(), &[online.clone(), keying.clone()]),
            Shown::Connecting
        );
        assert_eq!(overall(&up(), &[online, keying, failed]), Shown::Error);
        let gone = LinkState::Down {
            socket: "/x".into(),
            error: AppError::protocol("closed"),
        };
        assert_eq!(overall(&gone, &[]), Shown::Error);
    }
}
