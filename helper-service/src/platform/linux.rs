//! The TUN device on Linux, through tun-rs; routes through the kernel's
//! `ip` tool from iproute2.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;

use anyhow::{Context, Result, bail};
use tun_rs::{DeviceBuilder, SyncDevice};

/// What the TUN device looks like (the `tunnel` and `route` lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunSpec {
    /// Interface name (the `instance`).
    pub name: String,
    /// Own tunnel address.
    pub addr: Ipv4Addr,
    /// Prefix length of the tunnel network.
    pub prefix: u8,
    /// MTU.
    pub mtu: u16,
    /// Extra routes through the tunnel (network, prefix).
    pub routes: Vec<(Ipv4Addr, u8)>,
}

/// An open TUN device. Dropping it removes the interface (it is not
/// persistent), and with it its address and routes.
pub struct Tun {
    dev: SyncDevice,
    name: String,
    offload: bool,
}

impl Tun {
    /// Creates the device, sets address and MTU, brings it up and adds the
    /// routes. Non-blocking, so a role can drain it and then poll.
    ///
    /// Asks for segmentation offload (`IFF_VNET_HDR` with checksum, TSO
    /// and, where the kernel has it, UDP segmentation): the kernel then
    /// hands heaven-rx up to 64 KiB of one TCP flow per read and takes
    /// merged segments from heaven-tx, instead of doing its per-packet
    /// work for every segment. Falls back to a plain device when the
    /// kernel refuses.
    pub fn create(spec: &TunSpec) -> Result<Tun> {
        let build = |offload: bool| {
            DeviceBuilder::new()
                .name(&spec.name)
                .ipv4(spec.addr, spec.prefix, None)
                .mtu(spec.mtu)
                .offload(offload)
                .build_sync()
        };
        let dev = match build(true) {
            Ok(dev) => dev,
            Err(e) => {
                tracing::warn!(error = %e, "TUN offload unavailable, using a plain device");
                build(false).with_context(|| format!("creating TUN device {}", spec.name))?
            }
        };
        dev.set_nonblocking(true)
            .context("making the TUN device non-blocking")?;
        let name = dev.name().unwrap_or_else(|_| spec.name.clone());
        let offload = dev.tcp_gso();
        let tun = Tun { dev, name, offload };
        for (net, prefix) in &spec.routes {
            tun.ip(&[
                "route",
                "replace",
                &format!("{net}/{prefix}"),
                "dev",
                &tun.name,
            ])?;
        }
        Ok(tun)
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether packets on the device fd carry a virtio-net header (see
    /// [`chantry_core::offload`]).
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Changes the MTU (an MTU discovery ack).
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        self.dev
            .set_mtu(mtu)
            .with_context(|| format!("setting the MTU of {} to {mtu}", self.name))
    }

    /// A duplicate of the device fd for a role.
    pub fn dup_fd(&self) -> Result<OwnedFd> {
        self.as_fd()
            .try_clone_to_owned()
            .context("duplicating the TUN fd")
    }

    fn ip(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("ip")
            .args(args)
            .output()
            .context("running ip(8) from iproute2")?;
        if !out.status.success() {
            bail!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun").field("name", &self.name).finish()
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }
}
