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
    /// The `PtpOperatorConfig` resource (YAML or JSON, e.g. mounted from a ConfigMap): its
    /// `spec.ptpEventConfig.enableEventPublisher` decides whether lines go to the producer's
    /// socket, as the operator's `LOGS_TO_SOCKET` does; false or absent (the operator's
    /// default): no socket, as --no-socket. Read once at start.
    #[arg(long, env = "PTP_OPERATOR_CONFIG")]
    operator_config: Option<PathBuf>,
    /// Also print every forwarded line on stdout.
    #[arg(long)]
    print_lines: bool,
    /// Check the profiles and exit: read and validate them as the daemon would, print each
    /// process's command line and every warning, start nothing. Exit status 1 when invalid.
    #[arg(long)]
    check: bool,
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
    /// Emulate clock writes, for labs and tests on machines without PTP hardware: every process
    /// runs with a small preloaded library that swallows linuxptp's clock writes
    /// (`clock_adjtime` with modes set, `clock_settime`) and passes reads through, so that a
    /// software ptp4l (`-S`) locks without steering CLOCK_REALTIME. Nothing is disciplined; the
    /// daemon says so at start. Never on a real node.
    #[arg(long)]
    emulate_clock_writes: bool,
    /// How often the profile file is checked for changes, in seconds.
    #[arg(long, default_value_t = 1.0)]
    poll_interval: f64,
    /// Seconds between SIGTERM and SIGKILL when stopping a process.
    #[arg(long, default_value_t = 5.0)]
    stop_grace: f64,
    /// Where to serve the Go daemon's HTTP endpoints ("127.0.0.1:8081"; ":8081" on every
    /// interface as Go; "off"). If it cannot be bound the daemon runs without them. GET /ready (200 once a profile is applied and every process runs and has printed;
    /// else 503 saying why), GET /emit-logs (publishes the current state again, for a producer
    /// that asks on each connection), GET /port-aliases (interface → alias, JSON).
    #[arg(long, env = "DAEMON_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    http_addr: String,
}

/// Most connections open at once on the daemon's HTTP endpoints, from any one client address
/// too: on the default loopback address every local client is 127.0.0.1.
const HTTP_MAX_CONNECTIONS: usize = 64;

/// The daemon's HTTP endpoints (Go's `:8081`).
fn http_router(handle: daemon::DaemonHandle) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    let ready = handle.clone();
    let emit = handle.clone();
    axum::Router::new()
        .route(
            "/ready",
            get(move || {
                let h = ready.clone();
                async move {
                    match h.readiness() {
                        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n"),
                        ),
                    }
                }
            }),
        )
        .route(
            "/emit-logs",
            get(move || {
                let h = emit.clone();
                async move { format!("emitted {} lines\n", h.emit_logs()) }
            }),
        )
        .route(
            "/port-aliases",
            get(move || {
                let h = handle.clone();
                async move { axum::Json(h.port_aliases()) }
            }),
        )
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{name} {v}: must be a non-negative number of seconds"))
}

/// `--check`: the profiles as the daemon would run them, without running anything.
fn check(opts: &daemon::DaemonOptions) -> anyhow::Result<()> {
    let file = &opts.profile_file;
    let bytes =
        std::fs::read(file).with_context(|| format!("profiles {}: cannot read", file.display()))?;
    let (_, plan) = daemon::read_plan(opts, &bytes).map_err(anyhow::Error::msg)?;
    let mut warnings = 0;
    for p in plan.processes() {
        println!("{} ({}): {}", p.config_file, p.profile, p.argv.join(" "));
        for w in &p.warnings {
            println!("  warning: {w}");
            warnings += 1;
        }
    }
    println!(
        "{}: {} profile(s), {} process(es), {warnings} warning(s)",
        file.display(),
        plan.profiles.len(),
        plan.processes().count()
    );
    Ok(())
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
    if args.check {
        return check(&opts);
    }
    opts.command_prefix = args
        .command_prefix
        .as_deref()
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if args.emulate_clock_writes {
        let so = daemon::shim::install(&opts.render.run_dir).with_context(|| {
            format!(
                "--emulate-clock-writes: cannot write the clock-write shim into --run-dir {}",
                opts.render.run_dir.display()
            )
        })?;
        opts.command_prefix.extend(daemon::shim::prefix(&so));
        tracing::warn!(
            shim = %so.display(),
            "clock writes are emulated (--emulate-clock-writes): linuxptp's clock writes are swallowed, nothing is disciplined; for labs and tests only"
        );
    }
    let publisher = match &args.operator_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--operator-config {}: cannot read", path.display()))?;
            let on = event_publisher_enabled(&text)
                .with_context(|| format!("--operator-config {}", path.display()))?;
            tracing::info!(file = %path.display(), enable_event_publisher = on,
                "PtpOperatorConfig read: socket forwarding {}", if on { "on" } else { "off" });
            on
        }
        None => true,
    };
    opts.socket_path = (publisher && !args.no_socket).then_some(args.socket);
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
    let http_addr = crate::producer::parse_listen_addr(&args.http_addr)
        .map_err(|e| crate::usage("--http-addr", e))?;
    tracing::info!(profiles = %opts.profile_file.display(), run_dir = %opts.render.run_dir.display(), socket = ?opts.socket_path, "daemon starting");
    let d = daemon::Daemon::new(opts);
    let (http_stop, http_stop_rx) = tokio::sync::watch::channel(false);
    // The endpoints are a convenience: PTP supervision runs without them.
    let listener = match http_addr {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(%addr, error = %e, "--http-addr: cannot listen; running without /ready, /emit-logs, /port-aliases");
                None
            }
        },
        None => None,
    };
    let http = match listener {
        Some(listener) => {
            tracing::info!(addr = ?listener.local_addr().ok(), "serving /ready, /emit-logs, /port-aliases");
            let app = http_router(d.handle());
            // Reachable by every process in the node's network namespace: the producer's
            // connection limits (per client as in total: local clients are all 127.0.0.1).
            let limits = proxy::ServeLimits::unreported(
                "daemon HTTP",
                proxy::DEFAULT_HEADER_READ_TIMEOUT,
                proxy::DEFAULT_IDLE_TIMEOUT,
                HTTP_MAX_CONNECTIONS,
                HTTP_MAX_CONNECTIONS,
            );
            Some(tokio::spawn(proxy::serve_limited(
                listener,
                app,
                limits,
                None,
                http_stop_rx,
            )))
        }
        None => None,
    };
    d.run(crate::shutdown_signal()).await?;
    let _ = http_stop.send(true);
    if let Some(h) = http {
        let _ = tokio::time::timeout(Duration::from_secs(1), h).await;
    }
    if let Some(p) = printer {
        let _ = tokio::time::timeout(Duration::from_secs(1), p).await;
    }
    Ok(())
}

/// `spec.ptpEventConfig.enableEventPublisher` of a `PtpOperatorConfig` (YAML or JSON); absent
/// means false, as the operator defaults.
pub(crate) fn event_publisher_enabled(text: &str) -> anyhow::Result<bool> {
    ptp_config::event_publisher_enabled(text).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::event_publisher_enabled as enabled;

    const CR: &str = "apiVersion: ptp.openshift.io/v1
kind: PtpOperatorConfig
metadata:
  name: default
  namespace: openshift-ptp
spec:
  daemonNodeSelector:
    node-role.kubernetes.io/worker: \"\"
  ptpEventConfig:
    # the sidecar and LOGS_TO_SOCKET
    enableEventPublisher: VALUE   # comment
    transportHost: \"http://ptp-event-publisher-service-NODE_NAME.openshift-ptp.svc.cluster.local:9043\"
    apiVersion: \"2.0\"
";

    #[test]
    fn operator_config_yaml_true_and_false() {
        assert!(enabled(&CR.replace("VALUE", "true")).unwrap());
        assert!(!enabled(&CR.replace("VALUE", "false")).unwrap());
        assert!(enabled(&CR.replace("VALUE", "yes")).unwrap());
        assert!(enabled(&CR.replace("VALUE", "\"2\"")).is_err());
    }

    #[test]
    fn operator_config_absent_means_false_as_the_operator_defaults() {
        let no_field = CR.replace("    enableEventPublisher: VALUE   # comment\n", "");
        assert!(!enabled(&no_field).unwrap());
        let no_section = "kind: PtpOperatorConfig\nspec:\n  daemonNodeSelector: {}\n";
        assert!(!enabled(no_section).unwrap());
        // the same key elsewhere does not count
        let elsewhere =
            "kind: PtpOperatorConfig\nspec:\n  plugins:\n    enableEventPublisher: true\n";
        assert!(!enabled(elsewhere).unwrap());
    }

    #[test]
    fn operator_config_json_flow_and_multi_document() {
        let json = r#"{"apiVersion":"ptp.openshift.io/v1","kind":"PtpOperatorConfig",
            "spec":{"ptpEventConfig":{"enableEventPublisher":true}}}"#;
        assert!(enabled(json).unwrap());
        let flow = "kind: PtpOperatorConfig\nspec:\n  ptpEventConfig: {enableEventPublisher: true, apiVersion: \"2.0\"}\n";
        assert!(enabled(flow).unwrap());
        let multi = format!(
            "kind: ConfigMap\nmetadata:\n  name: x\n---\n{}",
            CR.replace("VALUE", "true")
        );
        assert!(enabled(&multi).unwrap());
        assert!(enabled("kind: PtpConfig\nspec: {}\n").is_err());
        assert!(enabled("\n# nothing\n").is_err());
    }

    #[test]
    fn operator_config_of_the_deploy_manifests() {
        // deploy/kubernetes: the base (daemon alone) says false, overlays/events says true.
        let base = include_str!("../../../deploy/kubernetes/base/ptpoperatorconfig.yaml");
        let events =
            include_str!("../../../deploy/kubernetes/overlays/events/ptpoperatorconfig.yaml");
        assert!(!enabled(base).unwrap());
        assert!(enabled(events).unwrap());
    }
}
