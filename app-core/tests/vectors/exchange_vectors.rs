//! Checkers for this module's vector files (not written yet: they fail).

pub fn key_exchange() -> usize {
    panic!("key_exchange: no checker written yet")
}
