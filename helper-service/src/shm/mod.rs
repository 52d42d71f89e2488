//! Shared memory between role processes.
