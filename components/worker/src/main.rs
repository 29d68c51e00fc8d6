//! `worker`: serves an engine on a Dynamo-compatible endpoint until SIGINT/SIGTERM.

fn main() -> std::process::ExitCode {
    worker::entry::main()
}
