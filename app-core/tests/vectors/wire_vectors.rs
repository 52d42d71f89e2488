//! Checkers for this module's vector files (not written yet: they fail).

pub fn shroud() -> usize {
    panic!("shroud: no checker written yet")
}

pub fn struct_sizes() -> usize {
    panic!("struct_sizes: no checker written yet")
}
