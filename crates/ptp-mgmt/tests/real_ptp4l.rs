//! The client against real ptp4l 3.1.1: a grandmaster and a slave-only clock in two network
//! namespaces joined by a veth pair (`ptp4l -2 -S`, software timestamping), each with its own
//! `uds_address`. Every answer is checked against what linuxptp's own `pmc` prints for the same
//! request. Needs root, `ip`, ptp4l and pmc: skipped with a message otherwise (a failure under
//! `CI=true`, where they are installed). The slave runs `free_running 1`: it never adjusts a clock.
//!
//! The error cases that need no ptp4l (no socket, a stale socket, a socket nobody answers on)
//! run everywhere.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram as StdDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ptp_mgmt::codec::{Action, Dataset, ExternalGrandmasterProperties, ManagementErrorId, Tlv};
use ptp_mgmt::{
    Client, ClientConfig, ClockIdentity, ClockQuality, GrandmasterSettings, MgmtError, NotifyEvent,
    PortState, TimeFlags,
};

fn prerequisites() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root (network namespaces need root)".into());
    }
    for bin in ["/usr/sbin/ptp4l", "/usr/sbin/pmc"] {
        if !Path::new(bin).exists() {
            return Err(format!("{bin} is missing (apt-get install linuxptp)"));
        }
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Err("`ip` is missing (apt-get install iproute2)".into());
    }
    Ok(())
}

fn skip_or_fail(why: String) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the real-ptp4l test cannot run: {why}");
    }
    eprintln!("SKIPPED real ptp4l management test: {why}");
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces, a veth pair, a grandmaster and a slave; all removed on drop (also when the
/// test fails).
struct Testbed {
    dir: tempfile::TempDir,
    ns: [String; 2],
    ifs: [String; 2],
    gm: Option<Child>,
    slave: Option<Child>,
}

impl Testbed {
    fn new() -> Testbed {
        let id = std::process::id() % 100_000;
        let t = Testbed {
            dir: tempfile::tempdir().expect("tempdir"),
            ns: [format!("mgmtgm{id}"), format!("mgmtsl{id}")],
            ifs: [format!("mg{id}"), format!("ms{id}")],
            gm: None,
            slave: None,
        };
        for ns in &t.ns {
            ip(&["netns", "add", ns]);
        }
        ip(&[
            "link", "add", &t.ifs[0], "type", "veth", "peer", "name", &t.ifs[1],
        ]);
        for i in 0..2 {
            ip(&["link", "set", &t.ifs[i], "netns", &t.ns[i]]);
            ip(&["-n", &t.ns[i], "link", "set", &t.ifs[i], "up"]);
        }
        t
    }

    fn sock(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.sock"))
    }

    fn ptp4l(&self, i: usize, name: &str, extra: &str) -> Child {
        let cfg = self.dir.path().join(format!("{name}.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "[global]\nuds_address {}\nlogAnnounceInterval -3\nannounceReceiptTimeout 3\n\
                 logSyncInterval -3\n{extra}",
                self.sock(name).display()
            ),
        )
        .expect("cfg");
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log");
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns[i],
                "/usr/sbin/ptp4l",
                "-2",
                "-S",
                "-m",
            ])
            .args(["-i", &self.ifs[i], "-f"])
            .arg(&cfg)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start ptp4l")
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

fn stop(c: &mut Option<Child>) {
    if let Some(mut c) = c.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        stop(&mut self.gm);
        stop(&mut self.slave);
        for ns in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// What `pmc -u -b 0 -s <sock> "<cmd>"` prints for the first answer, as field → value.
fn pmc(sock: &Path, cmd: &str) -> BTreeMap<String, String> {
    let out = Command::new("/usr/sbin/pmc")
        .args(["-u", "-b", "0", "-s"])
        .arg(sock)
        .arg(cmd)
        .output()
        .expect("run pmc");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = BTreeMap::new();
    let mut answers = 0;
    for l in text.lines() {
        if l.contains(" seq ") && (l.contains("RESPONSE") || l.contains("ERROR")) {
            answers += 1;
            if answers > 1 {
                break;
            }
            fields.insert("_answer".to_owned(), l.trim().to_owned());
            continue;
        }
        if answers == 1
            && let Some((k, v)) = l.trim().split_once(char::is_whitespace)
        {
            fields.insert(k.to_owned(), v.trim().to_owned());
        }
    }
    assert!(answers > 0, "pmc {cmd:?} got no answer:\n{text}");
    fields
}

fn hex(v: impl Into<u32>) -> String {
    format!("0x{:x}", v.into())
}

async fn client(sock: &Path, dir: &Path) -> Client {
    Client::new(sock, dir, ClientConfig::default()).expect("client")
}

/// Polls `f` every 50 ms until it returns Some, for at most `within`.
/// Evaluates `$poll` (an expression giving an `Option`, which may `.await` and borrow mutably)
/// every 50 ms until it is `Some`, failing the test with `$what` after `$within`.
macro_rules! poll_until {
    ($within:expr, $what:expr, $poll:expr) => {{
        let deadline = Instant::now() + $within;
        loop {
            if let Some(v) = $poll {
                break v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

async fn until<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_settings_and_pushes_match_pmc_on_real_ptp4l() {
    if let Err(why) = prerequisites() {
        return skip_or_fail(why);
    }
    let mut tb = Testbed::new();
    tb.gm = Some(tb.ptp4l(0, "gm", "priority1 127\nclockClass 6\n"));
    tb.slave = Some(tb.ptp4l(1, "slave", "slaveOnly 1\nfree_running 1\n"));
    let (gm_sock, sl_sock) = (tb.sock("gm"), tb.sock("slave"));
    let local = tb.dir.path().to_path_buf();
    until(Duration::from_secs(5), "the gm socket", || async {
        gm_sock.exists().then_some(())
    })
    .await;
    let mut gm = client(&gm_sock, &local).await;
    until(Duration::from_secs(5), "the slave socket", || async {
        sl_sock.exists().then_some(())
    })
    .await;
    let mut sl = client(&sl_sock, &local).await;

    // DEFAULT_DATA_SET of the grandmaster, as pmc reads it.
    let gm_default = gm.default_data_set().await.expect("gm DEFAULT_DATA_SET");
    let p = pmc(&gm_sock, "GET DEFAULT_DATA_SET");
    assert_eq!(p["clockIdentity"], gm_default.clock_identity.to_string());
    assert_eq!(p["clockClass"], gm_default.clock_quality.class.to_string());
    assert_eq!(gm_default.clock_quality.class, 6);
    assert_eq!(p["priority1"], "127");
    assert_eq!(p["numberPorts"], gm_default.number_ports.to_string());
    assert_eq!(p["slaveOnly"], u8::from(gm_default.slave_only).to_string());
    assert_eq!(p["domainNumber"], gm_default.domain_number.to_string());

    // The slave selects the grandmaster: its PARENT_DATA_SET names it, with class 6.
    let parent = poll_until!(Duration::from_secs(10), "the slave to follow the gm", {
        match sl.parent_data_set().await {
            Ok(p) if p.grandmaster_identity == gm_default.clock_identity => Some(p),
            _ => None,
        }
    });
    let p = pmc(&sl_sock, "GET PARENT_DATA_SET");
    assert_eq!(
        p["grandmasterIdentity"],
        parent.grandmaster_identity.to_string()
    );
    assert_eq!(
        p["parentPortIdentity"],
        parent.parent_port_identity.to_string()
    );
    assert_eq!(p["gm.ClockClass"], "6");
    assert_eq!(parent.grandmaster_clock_quality.class, 6);
    assert_eq!(
        p["gm.ClockAccuracy"],
        hex(parent.grandmaster_clock_quality.accuracy)
    );
    assert_eq!(
        p["gm.OffsetScaledLogVariance"],
        hex(parent.grandmaster_clock_quality.offset_scaled_log_variance)
    );
    assert_eq!(p["grandmasterPriority1"], "127");
    assert_eq!(parent.grandmaster_priority1, 127);
    assert_eq!(
        p["grandmasterPriority2"],
        parent.grandmaster_priority2.to_string()
    );

    // TIME_PROPERTIES_DATA_SET and CURRENT_DATA_SET of the slave.
    let tp = sl
        .time_properties()
        .await
        .expect("TIME_PROPERTIES_DATA_SET");
    let p = pmc(&sl_sock, "GET TIME_PROPERTIES_DATA_SET");
    assert_eq!(p["currentUtcOffset"], tp.current_utc_offset.to_string());
    assert_eq!(
        p["ptpTimescale"],
        u8::from(tp.flags.ptp_timescale).to_string()
    );
    assert_eq!(
        p["timeTraceable"],
        u8::from(tp.flags.time_traceable).to_string()
    );
    assert_eq!(p["timeSource"], hex(tp.time_source));
    let cur = sl.current_data_set().await.expect("CURRENT_DATA_SET");
    assert_eq!(cur.steps_removed, 1, "{cur:?}");
    assert_eq!(pmc(&sl_sock, "GET CURRENT_DATA_SET")["stepsRemoved"], "1");

    // PORT_DATA_SET: the slave's one port follows the gm (free_running: it stays UNCALIBRATED).
    let ports = sl.get_ports().await.expect("PORT_DATA_SET");
    assert_eq!(ports.len(), 1, "{ports:?}");
    let p = pmc(&sl_sock, "GET PORT_DATA_SET");
    assert_eq!(p["portIdentity"], ports[0].port_identity.to_string());
    assert_eq!(p["portState"], ports[0].port_state.name());
    assert!(
        matches!(
            ports[0].port_state,
            PortState::Uncalibrated | PortState::Slave
        ),
        "{ports:?}"
    );
    assert_eq!(p["logAnnounceInterval"], "-3");
    assert_eq!(ports[0].log_announce_interval, -3);
    assert_eq!(
        gm.get_ports().await.expect("gm ports")[0].port_state,
        PortState::Master
    );

    // SET GRANDMASTER_SETTINGS_NP on the gm: class 7 with its time properties; pmc reads it
    // back, and the slave's PARENT_DATA_SET shows it within a second (announces every 125 ms).
    let before = gm
        .grandmaster_settings()
        .await
        .expect("GET GRANDMASTER_SETTINGS_NP");
    let p = pmc(&gm_sock, "GET GRANDMASTER_SETTINGS_NP");
    assert_eq!(p["clockClass"], before.clock_quality.class.to_string());
    assert_eq!(p["timeSource"], hex(before.time_source));
    let wanted = GrandmasterSettings {
        clock_quality: ClockQuality {
            class: 7,
            accuracy: 0x21,
            offset_scaled_log_variance: 0x4e5d,
        },
        current_utc_offset: 37,
        flags: TimeFlags {
            current_utc_offset_valid: true,
            time_traceable: true,
            frequency_traceable: true,
            ..TimeFlags::default()
        },
        time_source: 0x20,
    };
    let set = gm
        .set_grandmaster_settings(wanted)
        .await
        .expect("SET GRANDMASTER_SETTINGS_NP");
    assert_eq!(set, wanted);
    let p = pmc(&gm_sock, "GET GRANDMASTER_SETTINGS_NP");
    assert_eq!(p["clockClass"], "7");
    assert_eq!(p["clockAccuracy"], "0x21");
    assert_eq!(p["offsetScaledLogVariance"], "0x4e5d");
    assert_eq!(p["timeTraceable"], "1");
    assert_eq!(p["timeSource"], "0x20");
    let t0 = Instant::now();
    let seen = poll_until!(Duration::from_secs(3), "class 7 at the slave", {
        match sl.parent_data_set().await {
            Ok(p) if p.grandmaster_clock_quality.class == 7 => Some(p),
            _ => None,
        }
    });
    println!(
        "class 7 reached the slave's PARENT_DATA_SET after {:?}",
        t0.elapsed()
    );
    assert_eq!(seen.grandmaster_clock_quality, wanted.clock_quality);
    assert_eq!(pmc(&sl_sock, "GET PARENT_DATA_SET")["gm.ClockClass"], "7");
    let tp = sl
        .time_properties()
        .await
        .expect("TIME_PROPERTIES_DATA_SET");
    assert!(
        tp.flags.time_traceable && tp.flags.frequency_traceable,
        "{tp:?}"
    );
    assert_eq!(tp.time_source, 0x20);

    // A TLV of a newer linuxptp: a MANAGEMENT_ERROR_STATUS, reported as such, at once.
    let t0 = Instant::now();
    let e = gm
        .set(Dataset::ExternalGrandmasterProperties(
            ExternalGrandmasterProperties {
                grandmaster_identity: ClockIdentity([1, 2, 3, 4, 5, 6, 7, 8]),
                steps_removed: 1,
            },
        ))
        .await
        .expect_err("3.1.1 does not know EXTERNAL_GRANDMASTER_PROPERTIES_NP");
    assert!(
        t0.elapsed() < Duration::from_millis(400),
        "{:?}",
        t0.elapsed()
    );
    match &e {
        MgmtError::Status { error, .. } => assert!(
            matches!(
                error,
                ManagementErrorId::NoSuchId | ManagementErrorId::NotSupported
            ),
            "{e}"
        ),
        other => panic!("expected a status error, got {other}"),
    }
    println!("unknown TLV: {e}");

    // SUBSCRIBE_EVENTS_NP on the slave, then the gm goes: a PORT_DATA_SET push tells that the
    // port left UNCALIBRATED/SLAVE (3.1.1 keeps only the port-state bit).
    let sub = sl
        .subscribe(
            &[
                NotifyEvent::PortState,
                NotifyEvent::TimeSync,
                NotifyEvent::ParentDataSet,
            ],
            60,
        )
        .await
        .expect("SUBSCRIBE_EVENTS_NP");
    assert!(sub.has(NotifyEvent::PortState), "{sub:?}");
    println!(
        "3.1.1 accepted: port state {}, time sync {}, parent data set {}",
        sub.has(NotifyEvent::PortState),
        sub.has(NotifyEvent::TimeSync),
        sub.has(NotifyEvent::ParentDataSet)
    );
    stop(&mut tb.gm);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(5);
    let pushed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = sl.next_push(left).await.unwrap_or_else(|| {
            panic!(
                "no port-state push within 5 s of the gm's exit; slave log:\n{}",
                tb.log("slave")
            )
        });
        assert_eq!(m.action, Action::Response, "{m:?}");
        if let Tlv::Management(Dataset::Port(p)) = &m.tlv
            && !matches!(p.port_state, PortState::Uncalibrated | PortState::Slave)
        {
            break *p;
        }
    };
    println!(
        "port state push ({}) {:?} after the gm's exit",
        pushed.port_state.name(),
        t0.elapsed()
    );
    assert_eq!(pushed.port_identity, ports[0].port_identity);
    assert_eq!(
        pmc(&sl_sock, "GET PORT_DATA_SET")["portState"],
        sl.get_ports().await.expect("ports")[0].port_state.name()
    );

    // The slave goes too: its socket is left behind and refuses; then it is gone.
    stop(&mut tb.slave);
    let e = sl.parent_data_set().await.expect_err("ptp4l is gone");
    assert!(e.is_absent(), "{e}");
    let _ = std::fs::remove_file(&sl_sock);
    let e = sl.parent_data_set().await.expect_err("no socket");
    assert!(matches!(e, MgmtError::NoSocket(_)), "{e}");
    println!("slave logs:\n{}", tb.log("slave"));
}

#[tokio::test]
async fn missing_stale_and_silent_sockets_are_clear_errors_not_hangs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ClientConfig {
        timeout: Duration::from_millis(200),
        ..ClientConfig::default()
    };

    // Nothing there.
    let mut c = Client::new(&dir.path().join("absent.sock"), dir.path(), cfg.clone()).expect("c");
    let e = c.parent_data_set().await.expect_err("absent");
    assert!(matches!(e, MgmtError::NoSocket(_)), "{e}");
    assert!(e.is_absent());
    assert!(e.to_string().contains("absent.sock"), "{e}");
    drop(c);

    // A socket left by a ptp4l that exited: nobody reads it.
    let stale = dir.path().join("stale.sock");
    drop(StdDatagram::bind(&stale).expect("bind"));
    // A process forked meanwhile by a test running beside this one holds the socket until it
    // execs (close-on-exec): wait until the socket is really gone, as a probe sees it.
    let probe = StdDatagram::unbound().expect("probe");
    let deadline = Instant::now() + Duration::from_secs(5);
    while probe.send_to(b"?", &stale).map_err(|e| e.kind())
        != Err(std::io::ErrorKind::ConnectionRefused)
    {
        assert!(
            Instant::now() < deadline,
            "the closed socket still takes datagrams"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = Client::new(&stale, dir.path(), cfg.clone()).expect("c");
    let e = c.parent_data_set().await.expect_err("stale");
    assert!(matches!(e, MgmtError::Refused { .. }), "{e}");
    assert!(e.is_absent());
    drop(c);

    // A socket whose owner never answers: a timeout after the configured time, naming the
    // request as pmc would.
    let silent = dir.path().join("silent.sock");
    let _held = StdDatagram::bind(&silent).expect("bind");
    let mut c = Client::new(&silent, dir.path(), cfg.clone()).expect("c");
    let t0 = Instant::now();
    let e = c.parent_data_set().await.expect_err("silent");
    let took = t0.elapsed();
    assert!(
        matches!(e, MgmtError::Timeout { .. }),
        "expected a timeout, got {e}"
    );
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(e.to_string().contains("GET PARENT_DATA_SET"), "{e}");
    drop(c);

    // A regular file at the path is not a ptp4l either.
    let file = dir.path().join("file.sock");
    std::fs::write(&file, "x").expect("write");
    let mut c = Client::new(&file, dir.path(), cfg).expect("c");
    let e = c.parent_data_set().await.expect_err("file");
    assert!(e.is_absent(), "{e}");

    // Our own sockets are removed when the clients go.
    drop(c);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ptp-mgmt"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}
