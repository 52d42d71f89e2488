//! The role processes of a tunnel (spec/behaviour.md §1.1): their names on
//! the command line and in `run ROLE as USER`, and what kind of duty each
//! has, which decides how it is sandboxed.

use std::fmt;
use std::str::FromStr;

/// One sandboxed process of a running tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads clear packets from the TUN device, makes graces, queues them
    /// for bless.
    HeavenRx,
    /// Writes decrypted packets to the TUN device, consumes graces.
    HeavenTx,
    /// Receives datagrams on the UDP socket, unshrouds, classifies.
    PurgatoryRx,
    /// Shrouds and sends datagrams on the UDP socket.
    PurgatoryTx,
    /// Encrypts with the TX SA. Holds TX session keys only.
    Bless,
    /// Decrypts with the RX SAs. Holds RX session keys only.
    Confess,
    /// Tunnel-mode key exchange. The only holder of the shared secret.
    Chapel,
    /// One-way sender keying.
    Pilgrim,
    /// One-way receiver keying.
    Shrine,
    /// Answers status requests on the control socket.
    Control,
}

impl Role {
    /// Every role, in the order the guardian starts them.
    pub const ALL: [Role; 10] = [
        Role::Control,
        Role::PurgatoryRx,
        Role::PurgatoryTx,
        Role::HeavenRx,
        Role::Bless,
        Role::HeavenTx,
        Role::Confess,
        Role::Chapel,
        Role::Pilgrim,
        Role::Shrine,
    ];

    /// The name used on the command line, in logs and in `run ROLE as USER`.
    pub fn name(self) -> &'static str {
        match self {
            Role::HeavenRx => "heaven-rx",
            Role::HeavenTx => "heaven-tx",
            Role::PurgatoryRx => "purgatory-rx",
            Role::PurgatoryTx => "purgatory-tx",
            Role::Bless => "bless",
            Role::Confess => "confess",
            Role::Chapel => "chapel",
            Role::Pilgrim => "pilgrim",
            Role::Shrine => "shrine",
            Role::Control => "control",
        }
    }

    /// Crypto roles hold key material and never need a network: they run
    /// in an empty network namespace.
    pub fn is_crypto(self) -> bool {
        matches!(
            self,
            Role::Bless | Role::Confess | Role::Chapel | Role::Pilgrim | Role::Shrine
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>(), Ok(r));
        }
        assert!("heaven".parse::<Role>().is_err());
    }
}
