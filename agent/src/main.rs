//! The `osprey` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    agent::cli::main()
}
