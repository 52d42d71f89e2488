//! TUN segmentation offload, as plain packet transformations.
//!
//! A Linux TUN device opened with `IFF_VNET_HDR` and the TSO offloads
//! enabled puts a 10-byte virtio-net header ([`VnetHdr`]) in front of
//! every packet in both directions. Reading, the kernel may hand over one
//! TCP or UDP "super-packet" of up to 64 KiB that the sender's stack did
//! not cut into MTU-sized segments; [`gso::split`] cuts it, as a NIC would,
//! with every checksum filled in. Writing, consecutive in-order segments
//! of one TCP flow can be handed to the kernel as one packet;
//! [`gro::Coalescer`] merges them, so the receiving stack does its
//! per-packet work once per batch instead of once per segment.
//!
//! Both directions see hostile bytes (a peer's decrypted packets, or
//! whatever a local program sent into the TUN): every length and offset is
//! checked, and what cannot be handled is an error or is passed through
//! unchanged, never a panic.

pub mod checksum;
pub mod gro;
pub mod gso;
mod vnet;

pub use vnet::{
    GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, VNET_HDR_LEN, VnetHdr,
    VnetHdrError,
};

/// IP protocol number of TCP.
pub(crate) const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub(crate) const PROTO_UDP: u8 = 17;
