//! What makes the service retry or restart its tunnels without being
//! asked: changes of links, IPv4 addresses and IPv4 routes (a netlink
//! route socket subscribed to `RTMGRP_LINK`, `RTMGRP_IPV4_IFADDR` and
//! `RTMGRP_IPV4_ROUTE`, read through tokio's `AsyncFd`), and a resume
//! from sleep (`CLOCK_BOOTTIME` moving ahead of `CLOCK_MONOTONIC`, which
//! stops while the machine sleeps, polled every few seconds).
//!
//! Changes of the tunnels' own TUN devices are ignored: every guardian
//! start creates one, and a failing tunnel must not retry the others in
//! a loop.
//!
//! The socket and the clocks are Linux's. On macOS and Windows (where no
//! tunnel runs yet) [`spawn`] watches nothing; the message parsing and
//! the sleep arithmetic ([`Filter`], [`ResumeDetector`]) are portable.

use std::collections::HashSet;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::time::Duration;

#[cfg(target_os = "linux")]
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket,
};
#[cfg(target_os = "linux")]
use nix::time::{ClockId, clock_gettime};
#[cfg(target_os = "linux")]
use tokio::io::unix::AsyncFd;

use super::tunnels::Tunnels;

/// How often the clocks are compared.
pub const RESUME_POLL: Duration = Duration::from_secs(5);
/// A gap growth this large between two polls is a sleep.
pub const RESUME_THRESHOLD: Duration = Duration::from_secs(3);
/// Events closer together than this are handled once.
pub const SETTLE: Duration = Duration::from_millis(300);

#[cfg(target_os = "linux")]
const RTMGRP_LINK: u32 = 0x1;
#[cfg(target_os = "linux")]
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
#[cfg(target_os = "linux")]
const RTMGRP_IPV4_ROUTE: u32 = 0x40;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_OVERRUN: u16 = 4;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
/// `struct ifinfomsg`, `struct ifaddrmsg`, `struct rtmsg`.
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
const IFLA_IFNAME: u16 = 3;
const IFA_LABEL: u16 = 3;
const RTA_OIF: u16 = 4;

/// Decides which route-netlink messages are news: everything about
/// links, addresses and routes except what concerns the tunnels' own
/// interfaces (by name, and by the index learnt from their link
/// messages).
#[derive(Debug, Default)]
pub struct Filter {
    own_indexes: HashSet<u32>,
}

impl Filter {
    /// True if the datagram `buf` holds at least one message about
    /// something other than our own interfaces. `own` says whether an
    /// interface name is one of the tunnels'; `name_of` looks an index up
    /// (None if it is gone).
    pub fn news(
        &mut self,
        buf: &[u8],
        own: &dyn Fn(&str) -> bool,
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> bool {
        let mut news = false;
        let mut rest = buf;
        while rest.len() >= NLMSG_HDRLEN {
            let len = u32_at(rest, 0) as usize;
            let ty = u16_at(rest, 4);
            if len < NLMSG_HDRLEN || len > rest.len() {
                break;
            }
            let body = &rest[NLMSG_HDRLEN..len];
            news |= match ty {
                NLMSG_OVERRUN => true,
                RTM_NEWLINK | RTM_DELLINK => self.link(body, own),
                RTM_NEWADDR | RTM_DELADDR => self.addr(body, own, name_of),
                RTM_NEWROUTE | RTM_DELROUTE => self.route(body, own, name_of),
                _ => false,
            };
            rest = &rest[align(len).min(rest.len())..];
        }
        news
    }

    fn link(&mut self, body: &[u8], own: &dyn Fn(&str) -> bool) -> bool {
        if body.len() < IFINFOMSG_LEN {
            return false;
        }
        let index = u32_at(body, 4);
        match attr(&body[IFINFOMSG_LEN..], IFLA_IFNAME).map(c_str) {
            Some(name) if own(&name) => {
                self.remember(index);
                false
            }
            _ => !self.own_indexes.contains(&index),
        }
    }

    fn addr(
        &mut self,
        body: &[u8],
        own: &dyn Fn(&str) -> bool,
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> bool {
        if body.len() < IFADDRMSG_LEN {
            return false;
        }
        let index = u32_at(body, 4);
        if let Some(label) = attr(&body[IFADDRMSG_LEN..], IFA_LABEL).map(c_str)
            && own(&label)
        {
            self.remember(index);
            return false;
        }
        self.foreign(index, own, name_of)
    }

    fn route(
        &mut self,
        body: &[u8],
        own: &dyn Fn(&str) -> bool,
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> bool {
        if body.len() < RTMSG_LEN {
            return false;
        }
        match attr(&body[RTMSG_LEN..], RTA_OIF) {
            Some(oif) if oif.len() >= 4 => self.foreign(u32_at(oif, 0), own, name_of),
            // A route without an output interface (blackhole, multipath).
            _ => true,
        }
    }

    /// True unless `index` is (or was) one of our interfaces; an index
    /// that is gone by now counts as ours (its link message decides).
    fn foreign(
        &mut self,
        index: u32,
        own: &dyn Fn(&str) -> bool,
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> bool {
        if self.own_indexes.contains(&index) {
            return false;
        }
        match name_of(index) {
            Some(name) if own(&name) => {
                self.remember(index);
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    fn remember(&mut self, index: u32) {
        if self.own_indexes.len() >= 4096 {
            self.own_indexes.clear();
        }
        self.own_indexes.insert(index);
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The payload of the first attribute of type `ty` in `attrs`.
fn attr(mut attrs: &[u8], ty: u16) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = usize::from(u16_at(attrs, 0));
        if len < 4 || len > attrs.len() {
            return None;
        }
        if u16_at(attrs, 2) & 0x3fff == ty {
            return Some(&attrs[4..len]);
        }
        attrs = &attrs[align(len).min(attrs.len())..];
    }
    None
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Notices a sleep: the gap between `CLOCK_BOOTTIME` (counts sleep) and
/// `CLOCK_MONOTONIC` (does not) grows by the time slept.
#[derive(Debug, Default)]
pub struct ResumeDetector {
    gap: Option<Duration>,
}

impl ResumeDetector {
    /// Feeds one reading of both clocks; returns how long the machine
    /// slept since the last reading, if it did (at least
    /// [`RESUME_THRESHOLD`]).
    pub fn observe(&mut self, boottime: Duration, monotonic: Duration) -> Option<Duration> {
        let gap = boottime.saturating_sub(monotonic);
        let slept = self.gap.map(|before| gap.saturating_sub(before));
        self.gap = Some(gap);
        slept.filter(|s| *s >= RESUME_THRESHOLD)
    }
}

/// Both clocks now.
#[cfg(target_os = "linux")]
fn clocks() -> Option<(Duration, Duration)> {
    let b = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    let m = clock_gettime(ClockId::CLOCK_MONOTONIC).ok()?;
    Some((Duration::from(b), Duration::from(m)))
}

/// A route-netlink socket subscribed to link, IPv4 address and IPv4
/// route changes.
#[cfg(target_os = "linux")]
fn netlink_socket() -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::NetlinkRoute,
    )?;
    bind(
        fd.as_raw_fd(),
        &NetlinkAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE),
    )?;
    Ok(fd)
}

/// Registers the socket with tokio's reactor.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is open for as long as it lives and its
    // `as_raw_fd` always returns that same descriptor, which is what
    // `AsyncFd::register` asks of its caller; the `AsyncFd` owns it.
    unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)
}

/// Watches the network and the clocks for `tunnels` until the service
/// stops: a change retries failed wanted tunnels at once, a resume
/// restarts every wanted tunnel (both only while
/// [`Tunnels::reconnect_on_network_change`] is on).
#[cfg(target_os = "linux")]
pub fn spawn(tunnels: Tunnels) -> tokio::task::JoinHandle<()> {
    // Subscribed now, before any guardian of this start creates its TUN
    // device, so their link messages teach the filter.
    let netlink = match netlink_socket()
        .map_err(std::io::Error::from)
        .and_then(register)
    {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::warn!("netlink route socket: {e}: network changes will not be noticed");
            None
        }
    };
    tokio::spawn(async move {
        let mut filter = Filter::default();
        let mut resume = ResumeDetector::default();
        if let Some((b, m)) = clocks() {
            resume.observe(b, m);
        }
        let mut poll = tokio::time::interval(RESUME_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(feature = "test-hooks")]
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            #[cfg(feature = "test-hooks")]
            let fake_resume = async {
                match usr1.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(feature = "test-hooks"))]
            let fake_resume = std::future::pending::<Option<()>>();
            tokio::select! {
                news = read_news(netlink.as_ref(), &mut buf, &mut filter, &tunnels) => {
                    if !news {
                        continue;
                    }
                    // Let a burst (a link coming up with its addresses
                    // and routes) settle, then act once.
                    tokio::time::sleep(SETTLE).await;
                    while drain(netlink.as_ref(), &mut buf, &mut filter, &tunnels) {}
                    tunnels.network_changed();
                }
                _ = poll.tick() => {
                    if let Some((b, m)) = clocks()
                        && let Some(slept) = resume.observe(b, m)
                    {
                        tracing::info!(slept = ?slept, "resumed from sleep");
                        tunnels.resumed();
                    }
                }
                _ = fake_resume => {
                    tracing::info!("SIGUSR1 (test hook): acting as after a resume");
                    tunnels.resumed();
                }
            }
        }
    })
}

/// Watches nothing: this system has no netlink and no `CLOCK_BOOTTIME`
/// (and runs no tunnels yet). Failed tunnels are retried on their timer
/// only.
#[cfg(not(target_os = "linux"))]
pub fn spawn(tunnels: Tunnels) -> tokio::task::JoinHandle<()> {
    drop(tunnels);
    tracing::info!(
        "network changes and resume from sleep are not watched on {}",
        std::env::consts::OS
    );
    tokio::spawn(async {})
}

/// Waits for one datagram; true if it carries news.
#[cfg(target_os = "linux")]
async fn read_news(
    fd: Option<&AsyncFd<OwnedFd>>,
    buf: &mut [u8],
    filter: &mut Filter,
    tunnels: &Tunnels,
) -> bool {
    let Some(fd) = fd else {
        return std::future::pending().await;
    };
    let Ok(mut guard) = fd.readable().await else {
        return false;
    };
    match guard.try_io(|fd| {
        recv(fd.get_ref().as_raw_fd(), buf, MsgFlags::empty()).map_err(std::io::Error::from)
    }) {
        Ok(Ok(n)) => judge(&buf[..n], filter, tunnels),
        // ENOBUFS: the kernel dropped messages; assume something changed.
        Ok(Err(e)) => e.raw_os_error() == Some(nix::libc::ENOBUFS),
        Err(_would_block) => false,
    }
}

/// Reads what is queued without waiting; true while datagrams came.
#[cfg(target_os = "linux")]
fn drain(
    fd: Option<&AsyncFd<OwnedFd>>,
    buf: &mut [u8],
    filter: &mut Filter,
    tunnels: &Tunnels,
) -> bool {
    let Some(fd) = fd else { return false };
    match recv(fd.get_ref().as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
        Ok(n) if n > 0 => {
            judge(&buf[..n], filter, tunnels);
            true
        }
        Ok(_) => false,
        Err(nix::Error::ENOBUFS) => true,
        Err(_) => false,
    }
}

#[cfg(target_os = "linux")]
fn judge(buf: &[u8], filter: &mut Filter, tunnels: &Tunnels) -> bool {
    let own = tunnels.interfaces();
    filter.news(buf, &|name| own.iter().any(|o| o == name), &|index| {
        nix::net::if_::if_indextoname(index)
            .ok()
            .map(|c| c.to_string_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let len = u32::try_from(NLMSG_HDRLEN + body.len()).unwrap();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn rtattr(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&u16::try_from(4 + data.len()).unwrap().to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(data);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn link(index: u32, name: &str) -> Vec<u8> {
        let mut b = vec![0u8; IFINFOMSG_LEN];
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        b.extend(rtattr(IFLA_IFNAME, format!("{name}\0").as_bytes()));
        msg(RTM_NEWLINK, &b)
    }

    fn addr(index: u32, label: Option<&str>) -> Vec<u8> {
        let mut b = vec![0u8; IFADDRMSG_LEN];
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        if let Some(l) = label {
            b.extend(rtattr(IFA_LABEL, format!("{l}\0").as_bytes()));
        }
        msg(RTM_NEWADDR, &b)
    }

    fn route(oif: Option<u32>) -> Vec<u8> {
        let mut b = vec![0u8; RTMSG_LEN];
        b.extend(rtattr(15, &254u32.to_ne_bytes()));
        if let Some(i) = oif {
            b.extend(rtattr(RTA_OIF, &i.to_ne_bytes()));
        }
        msg(RTM_NEWROUTE, &b)
    }

    fn own(name: &str) -> bool {
        name == "chsvc0"
    }

    fn names(index: u32) -> Option<String> {
        match index {
            2 => Some("eth0".into()),
            7 => Some("chsvc0".into()),
            _ => None,
        }
    }

    #[test]
    fn own_interfaces_are_not_news() {
        let mut f = Filter::default();
        assert!(!f.news(&link(9, "chsvc0"), &own, &names));
        // Learnt index 9: its address and route are ours too.
        assert!(!f.news(&addr(9, None), &own, &names));
        assert!(!f.news(&route(Some(9)), &own, &names));
        // Index 7 is looked up by name.
        assert!(!f.news(&route(Some(7)), &own, &names));
        assert!(!f.news(&addr(8, Some("chsvc0")), &own, &names));
        assert!(!f.news(&route(Some(8)), &own, &names));
    }

    #[test]
    fn other_changes_are_news() {
        let mut f = Filter::default();
        assert!(f.news(&link(2, "eth0"), &own, &names));
        assert!(f.news(&addr(2, Some("eth0")), &own, &names));
        assert!(f.news(&route(Some(2)), &own, &names));
        assert!(f.news(&route(None), &own, &names));
        // One of ours and one foreign in the same datagram: news.
        let mut both = link(9, "chsvc0");
        both.extend(addr(2, None));
        assert!(f.news(&both, &own, &names));
        // Unknown message types and truncated junk are not.
        assert!(!f.news(&msg(3, &[]), &own, &names));
        assert!(!f.news(&[1, 2, 3], &own, &names));
        let mut short = link(2, "eth0");
        short.truncate(20);
        assert!(!f.news(&short, &own, &names));
    }

    #[test]
    fn a_growing_clock_gap_is_a_sleep() {
        let s = Duration::from_secs;
        let mut d = ResumeDetector::default();
        assert_eq!(d.observe(s(100), s(90)), None);
        assert_eq!(d.observe(s(105), s(95)), None);
        assert_eq!(d.observe(s(106), s(96) + Duration::from_millis(10)), None);
        assert_eq!(
            d.observe(s(700), s(100)),
            Some(s(590) + Duration::from_millis(10))
        );
        assert_eq!(d.observe(s(705), s(105)), None);
    }
}
