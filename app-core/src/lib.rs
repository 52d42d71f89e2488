//! Chantry's protocol core: sanctum 1.x as sans-IO state machines.
//!
//! Nothing in this crate opens a socket, spawns a thread or reads a clock.
//! Every component takes bytes and a time in and gives bytes, deadlines and
//! events out; the caller (chantryd's role processes, the mobile engine, the
//! tests with a fake clock) owns all I/O. Randomness comes in through the
//! [`entropy::Entropy`] trait so runs can be made deterministic.
//!
//! Module map (spec references are to `../shared/spec`):
//! - [`secret`]: key material that zeroizes on drop and never prints.
//! - [`kdf`]: KMAC256 and every derivation of crypto.md.
//! - [`aead`]: AES-256-GCM with detached tags.
//! - [`wire`]: typed parse/build of every packet in wire.md.
//! - [`sa`]: security associations, anti-replay and lifetimes.
//! - [`exchange`]: the hybrid X25519 + ML-KEM-1024 key exchange.
//! - [`pilgrim`]: one-way (pilgrim/shrine) keying.
//! - [`cathedral`]: client side of cathedral messages and the checks a
//!   cathedral applies to them.
//! - [`ambry`], [`vicar`], [`config`]: on-disk formats of files.md.
//! - [`tunnel`]: one whole endpoint composed from the above.
//! - [`ipc`]: the messages between chantryd and its clients, and their
//!   length-delimited framing.
//! - [`offload`]: TUN segmentation offload (splitting super-packets read
//!   from the device, merging TCP segments written to it).
#![forbid(unsafe_code)]

pub mod aead;
pub mod ambry;
pub mod cathedral;
pub mod config;
pub mod entropy;
pub mod exchange;
pub mod ipc;
pub mod kdf;
pub mod offload;
pub mod pilgrim;
pub mod sa;
pub mod secret;
pub mod time;
pub mod tunnel;
pub mod vicar;
pub mod wire;
