//! `ptp-events`: the PTP fast event notification framework in one binary.
#![forbid(unsafe_code)]

mod consumer;
mod daemon;
mod lab;
mod live_page;
mod producer;
mod replay;
mod report;

use clap::{Parser, Subcommand, ValueEnum};

/// PTP fast event notification framework: tells applications the moment their node's time
/// synchronisation changes (O-RAN O-Cloud Notification API v2, the PTP events REST API).
#[derive(Parser, Debug)]
#[command(name = "ptp-events", version, propagate_version = true)]
struct Cli {
    /// Log format (all lines, the fatal one included). The level is LOG_LEVEL (or RUST_LOG):
    /// trace, debug, info (the default; warn for `lab`), warn, error, off (a bare level applies
    /// to this program; its libraries stay at warn), or target=level directives; anything else
    /// is refused at start. Colour only on a terminal without NO_COLOR.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the producer: the REST API v2 on --api-port, /metrics on --metrics-addr, durable
    /// subscriptions under --store-path, events delivered to every subscriber.
    Proxy(Box<producer::ProxyArgs>),
    /// Replay a linuxptp-daemon log (a file, or - for stdin) through the state engine and print
    /// the events it produces as JSON lines, with the log's own timestamps.
    Replay(replay::ReplayArgs),
    /// Run the reference consumer: listen on --local-api-addr, subscribe to the node's PTP
    /// resources on every --http-event-publishers, keep the subscriptions alive, log each event.
    Consumer(Box<consumer::ConsumerArgs>),
    /// Run the daemon: read PtpConfig profiles, render linuxptp configs, run and supervise
    /// ptp4l/phc2sys/ts2phc, and send their output lines to the producer's socket.
    Daemon(daemon::DaemonArgs),
    /// The whole chain on one machine: a software PTP testbed (root and linuxptp) or a replayed
    /// log, the producer on 127.0.0.1:9043, and a live view; `lab inject <fault>` from a second
    /// terminal.
    Lab(Box<lab::LabArgs>),
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The level filter from `LOG_LEVEL` (else `RUST_LOG`, else `default_level`). An empty value
/// counts as unset. A value that is neither a level (`trace`, `debug`, `info`, `warn`, `error`,
/// `off`) nor `target=level` directives is refused with the reason: a misspelt level would
/// otherwise be read as a target name and silence the process, warnings included.
fn log_filter(default_level: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for var in ["LOG_LEVEL", "RUST_LOG"] {
        let Ok(v) = std::env::var(var) else { continue };
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let ok = v.split(',').all(|d| {
            let d = d.trim();
            let level = d.rsplit_once('=').map_or(d, |(_, l)| l);
            LEVELS.contains(&level.to_ascii_lowercase().as_str())
        });
        if !ok {
            return Err(format!(
                "{var}={v:?}: not a log level ({}) nor comma-separated target=level directives",
                LEVELS.join(", ")
            ));
        }
        return tracing_subscriber::EnvFilter::try_new(scoped(v))
            .map_err(|e| format!("{var}={v:?}: {e}"));
    }
    Ok(tracing_subscriber::EnvFilter::new(scoped(default_level)))
}

/// Our crates. A bare `debug` or `trace` applies to them; the libraries under them (HTTP, TLS,
/// the runtime) stay at `warn`, or a debug log drowns in their internals. Directives
/// (`hyper=debug`) reach any crate.
const OUR_CRATES: [&str; 8] = [
    "ptp_events",
    "proxy",
    "daemon",
    "ptp_state",
    "ptp_config",
    "ptp_mgmt",
    "ptp_events_client",
    "oran_api",
];

fn scoped(v: &str) -> String {
    let level = v.trim().to_ascii_lowercase();
    if matches!(level.as_str(), "trace" | "debug" | "info") {
        let mut d = String::from("warn");
        for c in OUR_CRATES {
            d.push_str(&format!(",{c}={level}"));
        }
        d
    } else {
        v.to_owned()
    }
}

/// Colour only on a terminal, and never with `NO_COLOR` set (no-color.org).
fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn init_logging(format: LogFormat, filter: tracing_subscriber::EnvFilter) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The fatal line: in the log format, so that a crash loop's reason reaches a log pipeline
/// (JSON: level ERROR, the message, the error chain as a field).
fn fatal(format: LogFormat, e: &anyhow::Error) {
    match format {
        LogFormat::Text => eprintln!("error: {e:#}"),
        LogFormat::Json => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            tracing::error!(error_chain = ?chain, "{e:#}");
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The lab prints its own view; its components log warnings only, unless LOG_LEVEL says more.
    let default_level = match cli.command {
        Command::Lab(_) => "warn",
        _ => "info",
    };
    let filter = match log_filter(default_level) {
        Ok(f) => f,
        Err(why) => {
            // A usage error, as clap's own: exit 2.
            eprintln!("error: {why}");
            return std::process::ExitCode::from(2);
        }
    };
    let format = cli.log_format;
    init_logging(format, filter);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fatal(
                format,
                &anyhow::anyhow!("cannot start the async runtime: {e}"),
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        // The long-running commands catch SIGTERM/SIGINT from here on: one that arrives while
        // the command is still starting ends it cleanly once it is up (it used to kill a
        // starting process outright). `replay` and `lab inject` keep the default (they stop).
        let serves = match &cli.command {
            Command::Replay(_) => false,
            Command::Lab(a) => a.action.is_none(),
            _ => true,
        };
        if serves {
            install_shutdown_signals();
        }
        match cli.command {
            Command::Proxy(args) => producer::run(*args).await,
            Command::Replay(args) => replay::run(args),
            Command::Consumer(args) => consumer::run(*args).await,
            Command::Daemon(args) => daemon::run(args).await,
            Command::Lab(args) => lab::run(*args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            fatal(format, &e);
            if e.downcast_ref::<UsageError>().is_some() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// A bad flag value found after parsing (an address that does not parse, a range upside down):
/// reported as clap reports its own, exit 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `flag`: `e`, as a [`UsageError`].
pub(crate) fn usage(flag: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(UsageError(format!("{flag}: {e:#}")))
}

/// Set once SIGINT or SIGTERM arrived (see [`install_shutdown_signals`]).
static SHUTDOWN: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> =
    std::sync::OnceLock::new();

/// Catches SIGINT and SIGTERM from now on (inside the runtime, before any command starts).
fn install_shutdown_signals() {
    let (tx, rx) = tokio::sync::watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            let _ = tx.send(true);
            // Keep the sender: a receiver sees `true`, never a closed channel.
            std::future::pending::<()>().await;
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
        std::future::pending::<()>().await;
    });
    let _ = SHUTDOWN.set(rx);
}

/// Resolves once SIGINT or SIGTERM arrived (also when it arrived before this was called).
pub(crate) async fn shutdown_signal() {
    let Some(rx) = SHUTDOWN.get() else {
        return std::future::pending().await;
    };
    let mut rx = rx.clone();
    let _ = rx.wait_for(|s| *s).await;
}
