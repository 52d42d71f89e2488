// The library: generated bindings (src/main/java/org/chantry/mobile/
// chantry_mobile.kt, made by scripts/mobile-bindings.sh), the engine driver
// and ChantryVpnService, plus libchantry_mobile.so for each ABI in
// src/main/jniLibs (made by cargo-ndk, see README.md).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.chantry.mobile"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

dependencies {
    // uniffi's Kotlin bindings call the library through JNA.
    implementation("net.java.dev.jna:jna:5.15.0@aar")
}
