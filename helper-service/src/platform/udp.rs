//! The tunnel's UDP socket: bound by the guardian, non-blocking, with
//! don't-fragment set so path MTU problems surface instead of silently
//! fragmenting (wire.md §1).

use std::net::{SocketAddrV4, UdpSocket};

use anyhow::{Context, Result};

/// Socket buffer size asked for in each direction. The kernel's default
/// (about 200 KiB) holds some 150 full datagrams: at a few Gbit/s a
/// purgatory-rx that loses the CPU for a millisecond overflows it, and
/// every overflow is a TCP retransmit inside the tunnel.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Binds the socket at `local` with don't-fragment on and large buffers.
pub fn bind(local: SocketAddrV4) -> Result<UdpSocket> {
    let sock = UdpSocket::bind(local).with_context(|| format!("binding UDP {local}"))?;
    sock.set_nonblocking(true)
        .context("making the UDP socket non-blocking")?;
    set_dont_fragment(&sock).context("setting IP_MTU_DISCOVER=IP_PMTUDISC_DO")?;
    set_buffers(&sock);
    Ok(sock)
}

/// Asks for [`SOCKET_BUFFER`] bytes each way: beyond the sysctl limits
/// when privileged (the `*FORCE` options), else up to them. A refusal is
/// logged, not fatal: the tunnel works with smaller buffers, only slower.
#[cfg(target_os = "linux")]
fn set_buffers(sock: &UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    let size = SOCKET_BUFFER;
    if setsockopt(sock, sockopt::RcvBufForce, &size).is_err()
        && let Err(e) = setsockopt(sock, sockopt::RcvBuf, &size)
    {
        tracing::warn!(error = %e, "could not enlarge the UDP receive buffer");
    }
    if setsockopt(sock, sockopt::SndBufForce, &size).is_err()
        && let Err(e) = setsockopt(sock, sockopt::SndBuf, &size)
    {
        tracing::warn!(error = %e, "could not enlarge the UDP send buffer");
    }
}

#[cfg(not(target_os = "linux"))]
fn set_buffers(_sock: &UdpSocket) {}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_dont_fragment(sock: &UdpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let val: libc::c_int = libc::IP_PMTUDISC_DO;
    // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from a
    // pointer to a live local c_int, on a socket fd we own for the whole
    // call; no memory is written.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&raw const val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_dont_fragment(_sock: &UdpSocket) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use nix::sys::socket::{getsockopt, sockopt};
    use std::net::Ipv4Addr;

    fn sysctl(name: &str) -> usize {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .expect("sysctl")
            .trim()
            .parse()
            .expect("number")
    }

    /// The kernel reports twice the size set (its bookkeeping overhead).
    /// Privileged, the FORCE options get the full size; otherwise the
    /// request is capped at the sysctl maximum.
    #[test]
    fn buffers_are_enlarged() {
        let sock = bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let rcv = getsockopt(&sock, sockopt::RcvBuf).expect("SO_RCVBUF");
        let snd = getsockopt(&sock, sockopt::SndBuf).expect("SO_SNDBUF");
        let root = nix::unistd::geteuid().is_root();
        let cap = |max: &str| {
            if root {
                SOCKET_BUFFER
            } else {
                SOCKET_BUFFER.min(sysctl(max))
            }
        };
        assert_eq!(rcv, 2 * cap("rmem_max"));
        assert_eq!(snd, 2 * cap("wmem_max"));
    }
}
