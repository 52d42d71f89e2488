//! The landlock ruleset: no filesystem access beyond the plan's paths, no
//! TCP bind/connect, no abstract UNIX sockets or signals leaving the
//! sandbox.

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus,
    PathBeneath, PathFd, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, make_bitflags,
};

use super::{SandboxError, SandboxPlan};

/// The landlock ABI these rules were written and tested for (the kernel
/// here has 7). Newer kernels are asked for exactly this much; older ones
/// enforce what they can (best effort) and `enter` logs the difference.
pub const TARGET_ABI: ABI = ABI::V7;

/// Rights under an `fs_read` path: list directories, read files.
pub fn read_rights() -> BitFlags<AccessFs> {
    make_bitflags!(AccessFs::{ReadFile | ReadDir})
}

/// Rights under an `fs_write` path: the read rights plus write, create,
/// truncate and remove regular files (a file is replaced by writing a
/// temporary one and renaming it over, in the same directory). No
/// execute, no directories, devices, sockets, fifos or symlinks, no
/// cross-directory renames (`Refer`), no device ioctls.
pub fn write_rights() -> BitFlags<AccessFs> {
    read_rights() | make_bitflags!(AccessFs::{WriteFile | RemoveFile | MakeReg | Truncate})
}

/// What the kernel enforced, for the log.
#[derive(Debug)]
pub struct Enforced {
    /// Landlock on this kernel (and the ABI the crate uses with it).
    pub landlock: LandlockStatus,
    /// Fully, partially or not enforced.
    pub ruleset: RulesetStatus,
}

fn add_path(
    ruleset: landlock::RulesetCreated,
    path: &Path,
    rights: BitFlags<AccessFs>,
) -> Result<landlock::RulesetCreated, SandboxError> {
    let fd = PathFd::new(path).map_err(|source| SandboxError::LandlockPath {
        path: path.to_owned(),
        source,
    })?;
    // Directory-only rights on a file would make the rule "partial".
    let rights = if path.is_dir() {
        rights
    } else {
        rights & AccessFs::from_file(TARGET_ABI)
    };
    Ok(ruleset.add_rule(PathBeneath::new(fd, rights))?)
}

/// Builds and enforces the ruleset for `plan`.
pub fn restrict(plan: &SandboxPlan) -> Result<Enforced, SandboxError> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        .handle_access(AccessNet::from_all(TARGET_ABI))?
        .scope(Scope::from_all(TARGET_ABI))?
        .create()?;
    for path in &plan.fs_read {
        ruleset = add_path(ruleset, path, read_rights())?;
    }
    for path in &plan.fs_write {
        ruleset = add_path(ruleset, path, write_rights())?;
    }
    let RestrictionStatus {
        ruleset, landlock, ..
    } = ruleset.restrict_self()?;
    Ok(Enforced { landlock, ruleset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_are_narrow() {
        let all = AccessFs::from_all(TARGET_ABI);
        assert!(all.contains(write_rights()));
        for never in [
            AccessFs::Execute,
            AccessFs::MakeDir,
            AccessFs::RemoveDir,
            AccessFs::MakeSock,
            AccessFs::MakeFifo,
            AccessFs::MakeChar,
            AccessFs::MakeBlock,
            AccessFs::MakeSym,
            AccessFs::Refer,
            AccessFs::IoctlDev,
        ] {
            assert!(!write_rights().contains(never), "{never:?}");
        }
        assert!(!read_rights().contains(AccessFs::WriteFile));
    }
}
