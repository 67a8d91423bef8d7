fn main() {
    std::process::exit(haier_sync::cli::main());
}
