//! `posescope`: the command-line front end. Parsing and dispatch only: each
//! command lives in its own file under `cli/` and calls into the library;
//! `view` (the default, with the `gui` feature) opens the egui viewer.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::args::default_sigpipe();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    let files = cli.files;
    let result = cli
        .command
        .map_or_else(|| cli::Command::default_command(files), Ok)
        .and_then(|command| {
            if command.uses_network() {
                // keep large tensor buffers mapped between steps (glibc only; see nn::bench)
                posescope::estimate::nn::bench::tune_malloc();
            }
            command.run()
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
