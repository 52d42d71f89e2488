//! Installing chantryd as the system's service, started at boot and kept
//! running:
//!
//! * macOS ([`launchd`]): a LaunchDaemon,
//!   `/Library/LaunchDaemons/org.chantry.chantryd.plist`, loaded with
//!   `launchctl bootstrap system`.
//! * Windows (`windows`): a service of the service control manager
//!   (automatic start, LocalSystem) that runs `chantryd service --scm` and
//!   stops on the manager's stop or shutdown control.
//! * Linux: the systemd unit is the package's business; `install` says so.
//!
//! `chantryd service [FLAGS] install` records the flags that differ from
//! the defaults ([`service_args`]), so the installed service runs with them.

use std::ffi::OsString;

use super::Options;

pub mod launchd;
#[cfg(windows)]
pub mod windows;

/// The arguments after the program that run the service with `opts`: the
/// `service` subcommand and each flag whose value is not the default.
pub fn service_args(opts: &Options) -> Vec<OsString> {
    let mut args = vec![OsString::from("service")];
    let mut flag = |name: &str, value: OsString, default: &str| {
        if value != *default {
            args.push(name.into());
            args.push(value);
        }
    };
    flag(
        "--socket",
        opts.socket.clone().into_os_string(),
        super::DEFAULT_SOCKET,
    );
    flag(
        "--state-dir",
        opts.state_dir.clone().into_os_string(),
        super::DEFAULT_STATE_DIR,
    );
    flag("--group", opts.group.clone().into(), super::DEFAULT_GROUP);
    flag(
        "--admin-group",
        opts.admin_group.clone().into(),
        super::DEFAULT_ADMIN_GROUP,
    );
    args
}

/// Registers and starts the service (`chantryd service install`).
pub fn install(opts: &Options) -> anyhow::Result<()> {
    #[cfg(target_os = "macos")]
    {
        launchd::install(opts)
    }
    #[cfg(windows)]
    {
        windows::install(opts)
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        let _ = opts;
        anyhow::bail!(
            "on this system the service is installed by its package (the systemd unit runs \
             `chantryd service`); `chantryd service install` is for macOS and Windows"
        )
    }
}

/// Stops and removes the service (`chantryd service uninstall`); the state
/// directory is left alone.
pub fn uninstall() -> anyhow::Result<()> {
    #[cfg(target_os = "macos")]
    {
        launchd::uninstall()
    }
    #[cfg(windows)]
    {
        windows::uninstall()
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        anyhow::bail!(
            "on this system the service is removed with its package; `chantryd service \
             uninstall` is for macOS and Windows"
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn defaults() -> Options {
        Options {
            socket: super::super::DEFAULT_SOCKET.into(),
            state_dir: super::super::DEFAULT_STATE_DIR.into(),
            group: super::super::DEFAULT_GROUP.into(),
            admin_group: super::super::DEFAULT_ADMIN_GROUP.into(),
            chantryd: PathBuf::from("/usr/local/bin/chantryd"),
        }
    }

    #[test]
    fn default_options_need_no_flags() {
        assert_eq!(service_args(&defaults()), [OsString::from("service")]);
    }

    #[test]
    fn changed_options_are_recorded_in_order() {
        let opts = Options {
            state_dir: "/srv/chantry".into(),
            admin_group: "wheel".into(),
            ..defaults()
        };
        assert_eq!(
            service_args(&opts),
            [
                "service",
                "--state-dir",
                "/srv/chantry",
                "--admin-group",
                "wheel"
            ]
            .map(OsString::from)
        );
    }

    #[cfg(not(any(target_os = "macos", windows)))]
    #[test]
    fn linux_leaves_installation_to_the_package() {
        let e = install(&defaults()).unwrap_err().to_string();
        assert!(e.contains("systemd unit"), "{e}");
        let e = uninstall().unwrap_err().to_string();
        assert!(e.contains("package"), "{e}");
    }
}
