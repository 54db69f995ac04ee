//! `ptp-events`: the PTP fast event notification framework in one binary.
#![forbid(unsafe_code)]

mod consumer;
mod daemon;
mod lab;
mod producer;
mod replay;

use clap::{Parser, Subcommand, ValueEnum};

/// PTP fast event notification framework: tells applications the moment their node's time
/// synchronisation changes (O-RAN O-Cloud Notification API v2, the PTP events REST API).
#[derive(Parser, Debug)]
#[command(name = "ptp-events", version, propagate_version = true)]
struct Cli {
    /// Log format.
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

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The lab prints its own view; its components log warnings only, unless LOG_LEVEL says more.
    let default_level = match cli.command {
        Command::Lab(_) => "warn",
        _ => "info",
    };
    init_logging(cli.log_format, default_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
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
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
