//! chantryd: runs a sanctum.conf as privilege-separated role processes.

fn main() {}
