//! `ptp-events daemon`: run and supervise linuxptp from PtpConfig profiles and forward their
//! output to the producer's socket (or nowhere but the log).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// Flags of `ptp-events daemon`.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// This node's name: selects `<profile-dir>/<node>` and matches `spec.recommend[].match`.
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// Directory of the operator's per-node profile files (the mounted `ptp-configmap`); the
    /// profiles are read from `<dir>/<node-name>`.
    #[arg(long, env = "PTP_PROFILE_PATH", default_value = "/etc/linuxptp")]
    profile_dir: PathBuf,
    /// Read profiles from this file instead: a PtpConfig YAML (several `---` documents allowed),
    /// a ConfigMap manifest, or a JSON array of profiles. Overrides --profile-dir.
    #[arg(long, env = "PTP_PROFILE_FILE")]
    profile_file: Option<PathBuf>,
    /// A label key (or key=value) of this node, for `recommend[].match[].nodeLabel`. Repeatable.
    #[arg(long = "node-label", env = "NODE_LABELS", value_delimiter = ',')]
    node_labels: Vec<String>,
    /// Where rendered configs (`ptp4l.N.config`) and ptp4l sockets go; share it with the
    /// producer when it runs as a sidecar.
    #[arg(long, env = "PTP_RUN_DIR", default_value = "/var/run")]
    run_dir: PathBuf,
    /// The producer's UNIX socket to send lines to (the daemon dials it).
    #[arg(
        long,
        env = "EVENT_SOCKET",
        default_value = "/cloud-native/events.sock"
    )]
    socket: PathBuf,
    /// Do not dial a socket; lines only go to the log (with --print-lines).
    #[arg(long)]
    no_socket: bool,
    /// Also print every forwarded line on stdout.
    #[arg(long)]
    print_lines: bool,
    /// Lines kept for the socket while it is down; the oldest are dropped beyond this.
    #[arg(long, default_value_t = 4096)]
    socket_buffer: usize,
    /// Directory of ptp4l, phc2sys and ts2phc.
    #[arg(long, env = "LINUXPTP_BIN_DIR", default_value = "/usr/sbin")]
    bin_dir: PathBuf,
    /// Leap-seconds file set as ts2phc's `leapfile` (Go: /etc/leap/<node>); unset: left as the
    /// profile has it.
    #[arg(long)]
    leapfile: Option<PathBuf>,
    /// A command put in front of every process, split on blanks (e.g. "ip netns exec ns1").
    #[arg(long, env = "PTP_COMMAND_PREFIX")]
    command_prefix: Option<String>,
    /// How often the profile file is checked for changes, in seconds.
    #[arg(long, default_value_t = 1.0)]
    poll_interval: f64,
    /// Seconds between SIGTERM and SIGKILL when stopping a process.
    #[arg(long, default_value_t = 5.0)]
    stop_grace: f64,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{name} {v}: must be a non-negative number of seconds"))
}

pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.node_name.trim().is_empty(),
        "NODE_NAME/--node-name is empty; set it to this node's name"
    );
    let file = args
        .profile_file
        .clone()
        .unwrap_or_else(|| args.profile_dir.join(&args.node_name));
    let node = ptp_config::NodeSelector {
        name: args.node_name.clone(),
        labels: args.node_labels.clone(),
    };
    let mut opts = daemon::DaemonOptions::new(node, file);
    opts.render.run_dir = args.run_dir;
    opts.render.bin_dir = args.bin_dir;
    opts.render.leapfile = args.leapfile;
    opts.command_prefix = args
        .command_prefix
        .as_deref()
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    opts.socket_path = (!args.no_socket).then_some(args.socket);
    opts.socket_buffer = args.socket_buffer;
    opts.poll_interval = secs("poll-interval", args.poll_interval)?.max(Duration::from_millis(100));
    opts.stop_grace = secs("stop-grace", args.stop_grace)?;
    let printer = if args.print_lines {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4096);
        opts.lines = Some(tx);
        Some(tokio::spawn(async move {
            while let Some(l) = rx.recv().await {
                println!("{l}");
            }
        }))
    } else {
        None
    };
    tracing::info!(profiles = %opts.profile_file.display(), run_dir = %opts.render.run_dir.display(), socket = ?opts.socket_path, "daemon starting");
    let d = daemon::Daemon::new(opts);
    d.run(crate::shutdown_signal()).await?;
    if let Some(p) = printer {
        let _ = tokio::time::timeout(Duration::from_secs(1), p).await;
    }
    Ok(())
}
