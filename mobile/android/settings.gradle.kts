// Chantry for Android: the `chantry` library (generated uniffi bindings, the
// engine driver and the VpnService) and a minimal `app` that uses it.
// See README.md: the Rust library is built with cargo-ndk first.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "chantry"
include(":chantry", ":app")
