//! `ptp-events lab`: the whole chain on one machine, no PTP hardware, no cluster.
//!
//! Sources of linuxptp lines, best first:
//! - **live** (root and linuxptp installed): a software PTP testbed, two network namespaces and a
//!   veth pair, a grandmaster `ptp4l` and our daemon running a slave profile
//!   (see `live.rs`);
//! - **replay**: a real log recorded on that testbed (shipped in `lab/`), or one given with
//!   `--replay`, played in real time.
//!
//! Either way the lines feed the real producer (REST API on 127.0.0.1:9043, metrics on :9091)
//! in-process, and a built-in consumer subscribed to every resource prints a live view. Faults
//! are injected from a second terminal (`ptp-events lab inject gm-loss`) over a control socket,
//! or scripted (`--scenario`).

mod live;
mod replay_source;
mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use proxy::{DeliveryConfig, Ingest, IngestConfig, Producer, ProducerConfig};
use ptp_state::{EngineConfig, ProfileInfo, Thresholds};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// The recorded testbed log played in replay mode (real `ptp4l -2 -S` output of a slave on a
/// veth pair, `message_tag [ptp4l.0.config]`).
const RECORDED_LOG: &str = include_str!("../../lab/testbed-oc-slave.log");
/// The interface of the recorded slave.
const RECORDED_IFACE: &str = "vlabsl";
/// How long a crashed ptp4l stays down in replay mode (over the 5 s downtime threshold, so the
/// FREERUN is visible).
pub const CRASH_RESTART_AFTER: Duration = Duration::from_secs(8);

/// Flags of `lab`.
#[derive(Args, Debug, Clone)]
pub struct LabArgs {
    /// Send a command to a running lab instead of starting one.
    #[command(subcommand)]
    pub action: Option<LabAction>,
    /// Node name in resource addresses.
    #[arg(long, default_value = "lab-node")]
    pub node_name: String,
    /// Address the REST API and metrics bind to.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// REST API port.
    #[arg(long, default_value_t = 9043)]
    pub api_port: u16,
    /// Metrics port.
    #[arg(long, default_value_t = 9091)]
    pub metrics_port: u16,
    /// Where the lines come from: live testbed when possible, else replay.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,
    /// Replay this log instead of the recorded one (implies --mode replay).
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Replay speed factor.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Run a scripted scenario.
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Subscription store directory (default: a temporary directory removed on exit).
    #[arg(long)]
    pub store_path: Option<PathBuf>,
    /// Control socket for `lab inject`.
    #[arg(
        long,
        env = "PTP_EVENTS_LAB_CONTROL",
        default_value = "/tmp/ptp-events-lab.sock"
    )]
    pub control: PathBuf,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Do not print the live view.
    #[arg(long)]
    pub quiet: bool,
    /// holdOverTimeout of the lab's profile, in seconds (with --topology tbc: the time the
    /// T-BC's shortened holdover model takes from the loss to Free-Run, about; with tgm: the
    /// T-GM's LocalHoldoverTimeout: class 7 that long, then 140, then 248 half as long again).
    #[arg(long, default_value_t = 5)]
    pub holdover_timeout: u64,
    /// Serve a live page of the node (offsets, states, clock class, processes and the events,
    /// as `replay --report` draws them, updated as they happen) on this address (default
    /// 127.0.0.1:8080 when the flag is given alone).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub web: Option<SocketAddr>,
    /// What the live testbed builds: oc (grandmaster → slave), tbc (grandmaster → T-BC →
    /// T-TSC), tgm (gpsd → our T-GM → T-TSC). tbc and tgm need the live testbed (tgm also gpsd
    /// and gpsfake).
    #[arg(long, value_enum, default_value_t = live::Topology::Oc)]
    pub topology: live::Topology,
}

/// Where the lab's lines come from.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Live testbed when running as root with linuxptp installed, else replay.
    Auto,
    /// The software PTP testbed (root, linuxptp).
    Live,
    /// A recorded log.
    Replay,
}

/// Commands for a running lab.
#[derive(Subcommand, Debug, Clone)]
pub enum LabAction {
    /// Inject a fault: gm-loss, gm-restore, offset-spike [NS], ptp4l-crash, clock-class N; with
    /// --topology tgm: gnss-loss, gnss-restore, gnss-spoof, dpll auto|locked|lhaq|holdover|freerun.
    Inject {
        /// The fault and its argument.
        #[arg(required = true, num_args = 1..=2)]
        fault: Vec<String>,
    },
}

/// Several observers of the lab's engine.
#[derive(Debug)]
struct Fanout(Vec<Arc<dyn proxy::ingest::IngestObserver>>);

impl proxy::ingest::IngestObserver for Fanout {
    fn line(&self, line: &str, at: u64) {
        self.0.iter().for_each(|o| o.line(line, at));
    }
    fn change(&self, change: &ptp_state::Change, at: u64, line: Option<&str>) {
        self.0.iter().for_each(|o| o.change(change, at, line));
    }
}

/// `--topology tgm`: prints the DPLL's state when it changes (from the daemon's `dpll[...]`
/// lines; the DPLL is emulated), beside the events of the live view.
#[derive(Debug, Default)]
struct DpllView(std::sync::Mutex<Option<i64>>);

impl proxy::ingest::IngestObserver for DpllView {
    fn line(&self, line: &str, _at: u64) {
        if let ptp_state::ParsedLine::Dpll {
            phase_status,
            offset,
            ..
        } = ptp_state::parse_line(line)
        {
            let mut last = self.0.lock().expect("dpll view lock");
            if *last != Some(phase_status) {
                *last = Some(phase_status);
                let name = match phase_status {
                    1 => "FREERUN (unlocked)",
                    2 => "LOCKED",
                    3 => "LOCKED_HO_ACQ",
                    4 => "HOLDOVER",
                    _ => "unknown",
                };
                println!("lab: the DPLL (emulated) is {name}, phase offset {offset} ns");
            }
        }
    }
    fn change(&self, _change: &ptp_state::Change, _at: u64, _line: Option<&str>) {}
}

/// Scripted scenarios.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Scenario {
    /// Lock, lose the grandmaster (HOLDOVER), wait past holdOverTimeout (FREERUN), restore (LOCKED).
    HoldoverThenFreerun,
    /// Lock, then one offset sample far out of range (FREERUN), then back (LOCKED).
    OffsetExcursion,
    /// Lock, then ptp4l crashes and comes back.
    ProcessRestart,
    /// Lock, then the clock class goes 7 (holdover in spec) and back to 6.
    ClockClass,
}

/// A fault to inject.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The grandmaster disappears.
    GmLoss,
    /// The grandmaster comes back.
    GmRestore,
    /// One offset sample of this many ns.
    OffsetSpike(i64),
    /// The slave ptp4l dies (and is restarted).
    Ptp4lCrash,
    /// The grandmaster announces this clock class (live: a real SET GRANDMASTER_SETTINGS_NP;
    /// replay: a synthetic daemon line).
    ClockClass(u8),
    /// `--topology tgm`: gpsd goes away (its gpsfake killed): GNSS lost.
    GnssLoss,
    /// `--topology tgm`: gpsd is back with a 3D fix (and spoofing cleared).
    GnssRestore,
    /// `--topology tgm`: the GNSS receiver reports spoofing (emulated flag).
    GnssSpoof,
    /// `--topology tgm`: the emulated DPLL: `auto`, `locked`, `lhaq`, `holdover`, `freerun`.
    Dpll(String),
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        let mut words = s.split_whitespace();
        let name = words.next().unwrap_or("");
        let arg = words.next();
        let usage = "faults: gm-loss, gm-restore, offset-spike [NS], ptp4l-crash, clock-class N; with --topology tgm: gnss-loss, gnss-restore, gnss-spoof, dpll auto|locked|lhaq|holdover|freerun";
        Ok(match (name, arg) {
            ("gm-loss", None) => Fault::GmLoss,
            ("gm-restore", None) => Fault::GmRestore,
            ("offset-spike", None) => Fault::OffsetSpike(50_000),
            ("offset-spike", Some(n)) => Fault::OffsetSpike(
                n.parse()
                    .map_err(|_| format!("offset-spike {n}: not a number of ns"))?,
            ),
            ("ptp4l-crash", None) => Fault::Ptp4lCrash,
            ("clock-class" | "gm-class", Some(n)) => Fault::ClockClass(
                n.parse()
                    .map_err(|_| format!("clock-class {n}: expected 0..255"))?,
            ),
            ("gnss-loss", None) => Fault::GnssLoss,
            ("gnss-restore", None) => Fault::GnssRestore,
            ("gnss-spoof", None) => Fault::GnssSpoof,
            ("dpll", Some(m)) => match ptp_state::tgm::DpllState::parse(m) {
                Some(_) => Fault::Dpll(m.to_ascii_lowercase()),
                None if m == "auto" => Fault::Dpll("auto".into()),
                None => {
                    return Err(format!(
                        "dpll {m}: expected auto, locked, lhaq, holdover or freerun"
                    ));
                }
            },
            _ => return Err(format!("unknown fault {s:?}; {usage}")),
        })
    }
}

impl Scenario {
    fn steps(self, holdover: Duration) -> Vec<(Duration, Fault)> {
        // Each scenario starts once the clock is LOCKED (see `wait_locked`).
        let settle = Duration::from_secs(3);
        match self {
            Scenario::HoldoverThenFreerun => vec![
                (settle, Fault::GmLoss),
                // The announce timeout (~3 s) comes before HOLDOVER; restore well after FREERUN.
                (holdover + Duration::from_secs(8), Fault::GmRestore),
            ],
            Scenario::OffsetExcursion => vec![(settle, Fault::OffsetSpike(50_000))],
            Scenario::ProcessRestart => vec![(settle, Fault::Ptp4lCrash)],
            Scenario::ClockClass => vec![
                (settle, Fault::ClockClass(7)),
                (Duration::from_secs(5), Fault::ClockClass(6)),
            ],
        }
    }
}

/// Where faults go.
enum Source {
    Replay(Arc<replay_source::ReplaySource>),
    Live(Arc<live::Live>),
}

impl Source {
    async fn inject(&self, fault: &Fault) -> String {
        match self {
            Source::Replay(r) => r.inject(fault).await,
            Source::Live(l) => l.inject(fault).await,
        }
    }
}

/// Runs `lab` (or `lab inject`).
pub async fn run(args: LabArgs) -> anyhow::Result<()> {
    if let Some(LabAction::Inject { fault }) = &args.action {
        return inject(&args.control, &fault.join(" ")).await;
    }
    if UnixStream::connect(&args.control).await.is_ok() {
        bail!(
            "a lab is already running (control socket {}); stop it (Ctrl-C) first, or give this one other --api-port, --metrics-port and --control",
            args.control.display()
        );
    }
    let live_possible = live::possible();
    let mode = match (args.mode, &args.replay) {
        (_, Some(_)) | (Mode::Replay, None) => Mode::Replay,
        (Mode::Live, None) => {
            if let Err(why) = &live_possible {
                bail!("--mode live: {why}");
            }
            Mode::Live
        }
        (Mode::Auto, None) => {
            if live_possible.is_ok() {
                Mode::Live
            } else {
                Mode::Replay
            }
        }
    };

    let temp = tempfile::Builder::new()
        .prefix("ptp-events-lab-")
        .tempdir()?;
    let store = args
        .store_path
        .clone()
        .unwrap_or_else(|| temp.path().join("store"));
    let api_addr = SocketAddr::new(args.bind, args.api_port);
    let producer = Producer::start(ProducerConfig {
        node_name: args.node_name.clone(),
        api_addr,
        metrics_addr: Some(SocketAddr::new(args.bind, args.metrics_port)),
        store_path: store,
        uri_location_base: format!("http://localhost:{}", args.api_port),
        delivery: DeliveryConfig::default(),
        max_body_bytes: proxy::api::DEFAULT_MAX_BODY,
    })
    .await
    .with_context(|| {
        format!("starting the producer on {api_addr} (is another lab or producer running? use --api-port)")
    })?;

    if args.topology != live::Topology::Oc && mode != Mode::Live {
        bail!(
            "--topology {:?} needs the live testbed (root and linuxptp){}",
            args.topology,
            live_possible
                .as_ref()
                .err()
                .map(|w| format!(": {w}"))
                .unwrap_or_default()
        );
    }
    let holdover = Duration::from_secs(args.holdover_timeout);
    let mut profile = ProfileInfo::new("lab-slave");
    profile.thresholds = Thresholds {
        hold_over_timeout: holdover,
        max_offset: 5000,
        min_offset: -5000,
    };
    profile.interfaces = vec![
        match mode {
            Mode::Live => live::SLAVE_IFACE,
            _ => RECORDED_IFACE,
        }
        .to_owned(),
    ];
    let engine = match args.topology {
        live::Topology::Oc => {
            EngineConfig::new(args.node_name.clone()).with_profile("ptp4l.0.config", profile)
        }
        live::Topology::Tbc => {
            // The daemon's run ids: TT ptp4l.0.config, TR ptp4l.1.config (as Go's).
            let mut tt = ProfileInfo::new("00-tbc-tt");
            tt.interfaces = vec![live::TT_IFACE.to_owned()];
            let mut tr = ProfileInfo::new("01-tbc-tr");
            tr.interfaces = vec![live::TR_IFACE.to_owned()];
            tr.clock_type = ptp_state::ClockType::TBc;
            EngineConfig::new(args.node_name.clone())
                .with_profile("ptp4l.0.config", tt)
                .with_profile("ptp4l.1.config", tr)
        }
        live::Topology::Tgm => {
            let mut gm = ProfileInfo::new("lab-tgm");
            gm.interfaces = vec![live::GM_IFACE.to_owned()];
            gm.clock_type = ptp_state::ClockType::TGm;
            EngineConfig::new(args.node_name.clone()).with_profile("ptp4l.0.config", gm)
        }
    };
    let mut ingest_cfg = IngestConfig::new(engine);
    let live_page = args.web.map(|_| {
        crate::live_page::LivePage::new(
            &format!("PTP events of {} (lab, live)", args.node_name),
            -5000,
            5000,
        )
    });
    let mut observers: Vec<Arc<dyn proxy::ingest::IngestObserver>> = Vec::new();
    if let Some(p) = &live_page {
        observers.push(p.clone());
    }
    if args.topology == live::Topology::Tgm && !args.quiet {
        observers.push(Arc::new(DpllView::default()));
    }
    ingest_cfg.observer = match observers.len() {
        0 => None,
        1 => observers.pop(),
        _ => Some(Arc::new(Fanout(observers))),
    };
    let mut ingest = Ingest::start(producer.hub.clone(), ingest_cfg).await?;
    let mut live_handle = None;
    let source = match mode {
        Mode::Live => {
            let l = live::Live::start(temp.path(), holdover, &mut ingest, args.topology).await?;
            println!("lab: live software PTP testbed: {}", l.describe());
            live_handle = Some(l.clone());
            Source::Live(l)
        }
        _ => {
            let text = match &args.replay {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("--replay {}: cannot read", p.display()))?,
                None => RECORDED_LOG.to_owned(),
            };
            let r = replay_source::ReplaySource::new(
                &text,
                args.speed,
                ingest.sender(),
                "ptp4l.0.config",
            );
            tokio::spawn(r.clone().run());
            match (&args.replay, &live_possible) {
                (Some(p), _) => println!("lab: replaying {}", p.display()),
                (None, Err(why)) => println!(
                    "lab: replaying a recorded software-testbed log (live testbed unavailable: {why}; run as root with linuxptp installed for the live one)"
                ),
                (None, Ok(())) => {
                    println!("lab: replaying a recorded software-testbed log (--mode replay)")
                }
            }
            Source::Replay(r)
        }
    };
    let source = Arc::new(source);

    let view = view::View::start(!args.quiet).await?;
    view.subscribe(producer.api_addr, &args.node_name).await?;
    println!(
        "lab: node {} — REST API http://{}{}  metrics http://{}:{}/metrics",
        args.node_name,
        producer.api_addr,
        oran_api::API_BASE_PATH,
        args.bind,
        args.metrics_port
    );
    println!(
        "lab: point your consumer at {}; inject faults from another terminal: ptp-events lab inject {}",
        producer.api_addr,
        match args.topology {
            live::Topology::Tgm =>
                "gnss-loss | gnss-restore | gnss-spoof | dpll holdover|freerun|locked|auto | ptp4l-crash",
            _ => "gm-loss | gm-restore | offset-spike | ptp4l-crash | clock-class 7",
        }
    );

    let (web_stop, web_stop_rx) = tokio::sync::watch::channel(false);
    if let (Some(addr), Some(page)) = (args.web, &live_page) {
        let bound = crate::live_page::serve(addr, page.clone(), web_stop_rx).await?;
        println!("lab: live page http://{bound}/ (the report's picture, updated as it happens)");
    }
    let (control, control_path) = bind_control(&args.control).await?;
    let src = source.clone();
    let control_task = tokio::spawn(async move { serve_control(control, src).await });

    if let Some(s) = args.scenario {
        let src = source.clone();
        let hub = producer.hub.clone();
        tokio::spawn(async move {
            println!("lab: scenario {s:?}: waiting for lock-state LOCKED");
            if !wait_locked(&hub, Duration::from_secs(120)).await {
                println!(
                    "lab: scenario {s:?}: the clock did not lock within 120 s; running it anyway"
                );
            }
            for (wait, fault) in s.steps(holdover) {
                tokio::time::sleep(wait).await;
                let answer = src.inject(&fault).await;
                println!("lab: scenario {s:?}: {fault:?}: {answer}");
            }
            println!("lab: scenario {s:?} finished");
        });
    }

    match args.duration {
        Some(secs) => {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(secs)) => {},
                () = crate::shutdown_signal() => {},
            }
        }
        None => crate::shutdown_signal().await,
    }
    println!("lab: stopping");
    let _ = web_stop.send(true);
    control_task.abort();
    control_path.remove();
    if let Some(l) = live_handle {
        l.stop().await;
    }
    ingest.stop();
    producer.stop().await;
    let events = view.state.lock().expect("view lock").events.len();
    println!("lab: stopped cleanly ({events} events received by the built-in consumer)");
    Ok(())
}

/// Waits until lock-state is LOCKED (or `limit` passes).
async fn wait_locked(hub: &proxy::Hub, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let locked = hub
            .current_values(oran_api::Resource::LockState)
            .is_some_and(|v| v.first().is_some_and(|v| v.value == "LOCKED"));
        if locked {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn bind_control(path: &Path) -> anyhow::Result<(UnixListener, proxy::uds::BoundPath)> {
    proxy::uds::bind_listener(path)
        .await
        .map_err(|e| anyhow::anyhow!("control socket {}: {e}", path.display()))
}

async fn serve_control(listener: UnixListener, source: Arc<Source>) {
    while let Ok((stream, _)) = listener.accept().await {
        let source = source.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(r).read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match line.trim().parse::<Fault>() {
                Ok(f) => {
                    let a = source.inject(&f).await;
                    println!("lab: injected {f:?}: {a}");
                    a
                }
                Err(e) => format!("error: {e}"),
            };
            let _ = w.write_all(format!("{answer}\n").as_bytes()).await;
        });
    }
}

async fn inject(control: &PathBuf, fault: &str) -> anyhow::Result<()> {
    fault.parse::<Fault>().map_err(anyhow::Error::msg)?;
    let mut s = UnixStream::connect(control).await.with_context(|| {
        format!(
            "no lab is running (control socket {}); start one with: ptp-events lab",
            control.display()
        )
    })?;
    s.write_all(format!("{fault}\n").as_bytes()).await?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).await?;
    let answer = answer.trim();
    if let Some(e) = answer.strip_prefix("error: ") {
        bail!("{e}");
    }
    println!("{answer}");
    Ok(())
}
