//! The `causerie` server: configuration, wiring, serving; or, given a
//! subcommand, one administration command (`causerie --help`).

use causerie::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before the runtime's threads exist.
    causerie::process::tune_allocator();
    serve()
}

#[tokio::main]
async fn serve() -> ExitCode {
    let mut config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("causerie: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(command) = config.command.take() {
        // A command's standard output is its answer (a token, a link):
        // warnings go to standard error.
        causerie::server::init_tracing_for_commands();
        return causerie::cli::run(command, &config).await;
    }
    causerie::server::init_tracing();
    match causerie::server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("causerie: {e}");
            ExitCode::FAILURE
        }
    }
}
