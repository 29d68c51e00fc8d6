//! The worker as a separate process for the end-to-end tests (the `worker` binary's entry
//! point, built with this package so the tests can always find it).

fn main() -> std::process::ExitCode {
    worker::entry::main()
}
