//! `xapid`: thin entry point; everything lives in [`xenha::daemon`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(xenha::host::watchdog::HELPER_ARG) {
        return ExitCode::from(xenha::host::watchdog::run_helper(&args[2..]) as u8);
    }
    let matches = xenha::daemon::config::command().get_matches();
    if let Some((dir, written)) = xenha::daemon::generate::requested(&matches) {
        return match written {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xapid: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match xenha::daemon::Config::from_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xapid: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    match runtime.block_on(xenha::daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xapid: {e}");
            ExitCode::FAILURE
        }
    }
}
