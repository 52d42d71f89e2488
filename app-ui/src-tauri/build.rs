//! Tauri's build step: reads tauri.conf.json and the capabilities, and
//! checks that the front end (../dist, built by `npm run build`) exists.

fn main() {
    tauri_build::build();
}
