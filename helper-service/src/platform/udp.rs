//! The tunnel's UDP socket: bound by the guardian, non-blocking, with
//! don't-fragment set so path MTU problems surface instead of silently
//! fragmenting (wire.md §1).

use std::net::{SocketAddrV4, UdpSocket};

use anyhow::{Context, Result};

/// Binds the socket at `local` with don't-fragment on.
pub fn bind(local: SocketAddrV4) -> Result<UdpSocket> {
    let sock = UdpSocket::bind(local).with_context(|| format!("binding UDP {local}"))?;
    sock.set_nonblocking(true)
        .context("making the UDP socket non-blocking")?;
    set_dont_fragment(&sock).context("setting IP_MTU_DISCOVER=IP_PMTUDISC_DO")?;
    Ok(sock)
}

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
