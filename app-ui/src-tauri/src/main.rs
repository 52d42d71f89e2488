//! `chantry`: the desktop app (see the library's documentation).

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> anyhow::Result<()> {
    chantry_app::run()
}
