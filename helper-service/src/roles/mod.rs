//! The role processes. `chantryd role NAME` lands in [`run`]: the role
//! attaches what it inherited, enters its sandbox, and only then reads
//! input.

mod bless;
mod cathedral;
mod chapel;
mod chapel_ambry;
mod chapel_cathedral;
mod confess;
mod control;
mod heaven_rx;
mod heaven_tx;
mod keying;
mod mtu;
mod pilgrim;
mod purgatory_rx;
mod purgatory_tx;
pub mod runtime;
pub mod shared;
mod shrine;

use anyhow::{Context, Result, bail};

use crate::role::Role;
use crate::sandbox::{self, SandboxPlan, User};
use crate::shm::{SharedState, WakeFd};
use crate::wiring::{FdMap, RoleSettings, Slot};
use shared::Shared;

/// Ring metadata kind: a clear (or decrypted) IP packet.
pub const KIND_TRAFFIC: u8 = 0;
/// Ring metadata kind: a grace payload.
pub const KIND_GRACE: u8 = 1;

/// Environment variable with the uid:gid the role drops to.
pub const USER_ENV: &str = "CHANTRY_USER";

/// A role before its sandbox: what it inherited.
#[derive(Debug)]
pub struct Role0 {
    role: Role,
    fds: FdMap,
    settings: RoleSettings,
    user: Option<User>,
}

impl Role0 {
    /// Attaches the wakeup fd and the state page, then enters the sandbox:
    /// from here on the role can touch only what it was given. Every fd
    /// the role needs must have been taken from `fds` before this call;
    /// the rest are closed.
    fn enter(&mut self) -> Result<(WakeFd, Shared)> {
        let wake = WakeFd::from_fd(self.fds.take(Slot::Wake)?);
        let state = Shared::new(SharedState::attach(self.fds.take(Slot::State)?)?);
        let keep = self.fds.taken().to_vec();
        let plan = SandboxPlan {
            role: self.role,
            keep_fds: keep,
            user: self.user,
            fs_read: Vec::new(),
            fs_write: Vec::new(),
        };
        sandbox::enter(&plan).with_context(|| format!("{}: sandbox", self.role))?;
        #[cfg(feature = "test-hooks")]
        if self.settings.test_forbidden_syscall.as_deref() == Some(self.role.as_str()) {
            tracing::warn!("test hook: calling a syscall outside the allow-list");
            let _ = sandbox::test_forbidden_syscall(self.role);
        }
        state.mark_started(self.role);
        tracing::info!(role = %self.role, "sandboxed and running");
        Ok((wake, state))
    }
}

/// Entry point of `chantryd role NAME`.
pub fn run(name: &str) -> Result<()> {
    let role: Role = name.parse()?;
    let fds = FdMap::from_env()?;
    let settings = RoleSettings::from_env()?;
    let user = match std::env::var(USER_ENV) {
        Ok(v) => Some(parse_user(&v).with_context(|| format!("{USER_ENV}={v}"))?),
        Err(_) => None,
    };
    let r = Role0 {
        role,
        fds,
        settings,
        user,
    };
    match role {
        Role::HeavenRx => heaven_rx::run(r),
        Role::HeavenTx => heaven_tx::run(r),
        Role::PurgatoryRx => purgatory_rx::run(r),
        Role::PurgatoryTx => purgatory_tx::run(r),
        Role::Bless => bless::run(r),
        Role::Confess => confess::run(r),
        Role::Chapel => chapel::run(r),
        Role::Pilgrim => pilgrim::run(r),
        Role::Shrine => shrine::run(r),
        Role::Control => control::run(r),
        Role::Cathedral => cathedral::run(r),
        other => bail!("{other} is not a role chantryd runs yet"),
    }
}

fn parse_user(v: &str) -> Result<User> {
    let (uid, gid) = v.split_once(':').context("expected uid:gid")?;
    Ok(User {
        uid: uid.parse()?,
        gid: gid.parse()?,
    })
}
