//! The control socket (spec/files.md §8).
