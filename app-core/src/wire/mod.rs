//! Typed views of every sanctum packet (wire.md). Every parser takes
//! arbitrary bytes and returns an error; none of them panics.

pub mod data;
pub mod grace;
pub mod offer;
pub mod shroud;
