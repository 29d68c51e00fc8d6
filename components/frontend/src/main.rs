//! `frontend`: serves the OpenAI API for the models workers publish, until SIGINT/SIGTERM.

fn main() -> std::process::ExitCode {
    frontend::main()
}
