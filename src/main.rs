//! `agentkey`: serve the broker, or administer it from the command line.

use clap::Parser;

/// mimalloc instead of the C library's allocator: the request path allocates and frees across
/// threads (tokio's workers, SQLite's worker thread) and in buffers above glibc's per-thread
/// cache, which glibc serves from locked arenas and consolidates often.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = agentkey::cli::Cli::parse();
    agentkey::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(agentkey::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
