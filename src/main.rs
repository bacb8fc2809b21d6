//! The `causerie` server: configuration, wiring, serving.

use causerie::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before the runtime's threads exist.
    causerie::process::tune_allocator();
    serve()
}

#[tokio::main]
async fn serve() -> ExitCode {
    causerie::server::init_tracing();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("causerie: {e}");
            return ExitCode::from(2);
        }
    };
    match causerie::server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("causerie: {e}");
            ExitCode::FAILURE
        }
    }
}
