//! chantryctl: the command-line client of chantryd.

fn main() {}
