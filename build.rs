fn main() {
    // Migrations are embedded at compile time: a new migration folder must trigger a rebuild.
    println!("cargo:rerun-if-changed=migrations");
}
