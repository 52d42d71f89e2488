//! The macOS LaunchDaemon: the property list (a pure function, checked
//! against packaging/macos on every system) and, on macOS, `install` and
//! `uninstall` through launchctl.
//!
//! launchd starts the service at boot (`RunAtLoad`) and again whenever it
//! exits (`KeepAlive`); it sends SIGTERM to stop it, which the service
//! handles like systemd's.

/// The job's label.
pub const LABEL: &str = "org.chantry.chantryd";

/// Where the property list is installed.
pub const PLIST_PATH: &str = "/Library/LaunchDaemons/org.chantry.chantryd.plist";

/// Where launchd writes the service's stderr (its log).
pub const LOG_PATH: &str = "/var/log/chantryd.log";

/// `s` with the XML special characters escaped.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The LaunchDaemon property list that runs `program` with `args`.
pub fn plist(program: &str, args: &[&str]) -> String {
    let mut argv = String::new();
    for a in std::iter::once(program).chain(args.iter().copied()) {
        argv.push_str(&format!("\t\t<string>{}</string>\n", xml_escape(a)));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>{LABEL}</string>
	<key>ProgramArguments</key>
	<array>
{argv}	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<true/>
	<key>StandardErrorPath</key>
	<string>{LOG_PATH}</string>
</dict>
</plist>
"#
    )
}

/// Writes the property list for this binary (root:wheel 0644) and loads
/// it; a service already loaded is replaced.
#[cfg(target_os = "macos")]
pub fn install(opts: &super::super::Options) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;

    use anyhow::Context as _;

    let program = opts
        .chantryd
        .to_str()
        .context("chantryd's path is not UTF-8")?;
    let args = super::service_args(opts);
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().context("an argument is not UTF-8"))
        .collect::<anyhow::Result<_>>()?;
    // A loaded job keeps its old definition: unload it first (an error
    // here only means it was not loaded).
    let _ = launchctl(&["bootout", &format!("system/{LABEL}")]);
    std::fs::write(PLIST_PATH, plist(program, &args))
        .with_context(|| format!("writing {PLIST_PATH}"))?;
    std::fs::set_permissions(PLIST_PATH, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("chmod {PLIST_PATH}"))?;
    launchctl(&["bootstrap", "system", PLIST_PATH])?;
    println!("installed {PLIST_PATH}; launchd started {LABEL}");
    Ok(())
}

/// Unloads the job (launchd stops the service) and removes the property
/// list.
#[cfg(target_os = "macos")]
pub fn uninstall() -> anyhow::Result<()> {
    use anyhow::Context as _;

    if let Err(e) = launchctl(&["bootout", &format!("system/{LABEL}")]) {
        tracing::info!("{e:#} (not loaded?)");
    }
    match std::fs::remove_file(PLIST_PATH) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {PLIST_PATH}")),
    }
    println!("removed {LABEL}");
    Ok(())
}

/// Runs `launchctl ARGS`; its stderr is the error.
#[cfg(target_os = "macos")]
fn launchctl(args: &[&str]) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let out = std::process::Command::new("/bin/launchctl")
        .args(args)
        .output()
        .context("running launchctl")?;
    if !out.status.success() {
        anyhow::bail!(
            "launchctl {}: {} {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_plist_is_the_generated_one() {
        let packaged = include_str!("../../../../packaging/macos/org.chantry.chantryd.plist");
        assert_eq!(plist("/usr/local/bin/chantryd", &["service"]), packaged);
        assert!(PLIST_PATH.ends_with(&format!("/{LABEL}.plist")));
    }

    #[test]
    fn arguments_are_escaped() {
        let p = plist("/opt/a&b/chantryd", &["service", "--group", "<staff>"]);
        assert!(
            p.contains("\t\t<string>/opt/a&amp;b/chantryd</string>\n"),
            "{p}"
        );
        assert!(p.contains("\t\t<string>&lt;staff&gt;</string>\n"), "{p}");
        assert!(!p.contains("<staff>"), "{p}");
    }
}
