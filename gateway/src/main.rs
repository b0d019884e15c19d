fn main() {
    std::process::exit(yiwang_gateway::cli::main());
}
