//! `uniffi-bindgen`: generates the Kotlin, Swift and Python bindings of
//! `chantry-mobile` from its compiled library (library mode). It lives in
//! its own crate so that the mobile library never links the generator.
//! scripts/mobile-bindings.sh is the way to run it.

fn main() {
    uniffi::uniffi_bindgen_main()
}
