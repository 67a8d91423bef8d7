fn main() {
    // Migrations are embedded at compile time: a new migration folder must trigger a rebuild.
    println!("cargo:rerun-if-changed=migrations");

    // The daemon is a position-independent executable: at every start the loader reads its
    // relative relocations (some 80 000, 1.9 MB as plain RELA entries) and keeps those pages
    // resident. Packed (DT_RELR, glibc 2.36 and GNU ld 2.38 or later) they take a few kilobytes.
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
