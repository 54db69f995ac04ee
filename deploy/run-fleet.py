#!/usr/bin/env python3
"""A cluster on one machine, without containers: N emulated nodes sharing one grandmaster, each
with its own daemon and producer, and one consumer per node that reaches its own node's producer
through the node's Service name, as in the documented deployment.

    deploy/run-fleet.py [--nodes N] [--binary PATH] [--json FILE] [--keep-logs]

Needs root, iproute2 and linuxptp (ptp4l). The binary is `ptp-events` (default: the release
build, else the debug build, under target/).

The topology, all in network namespaces it creates (and deletes at the end):
- `ptpfleet-gm`: the grandmaster's `ptp4l -2 -S` on `gm0`, cabled to the bridge `ptpbr` (the PTP
  network);
- `ptpfleet-n<i>`, node `fleet-<i>`: its NIC `ens1f0` on `ptpbr`, and `eth0` with the node IP
  10.253.0.<10+i> on the cluster network (the bridge `clbr` in `ptpfleet-net`). The node runs
  what the DaemonSet pod runs under hostNetwork: `ptp-events daemon` (a slave profile on
  `ens1f0`, its ptp4l with clock writes emulated: every node's ptp4l locks without steering the
  host's clock) and `ptp-events proxy` (the producer, on the node IP, port 9043, its socket
  shared with the daemon);
- `ptpfleet-c<i>`: node i's consumer pod, IP 10.253.1.<10+i>, running `ptp-events consumer`
  with NODE_NAME=fleet-<i> and `--http-event-publishers
  ptp-event-publisher-service-fleet-<i>.openshift-ptp.svc.cluster.local:9043`. Every Service
  name resolves (through the namespace's /etc/hosts, as cluster DNS would) to its node's IP: a
  consumer could reach any node's producer, and must use its own.

Checks, each with its time: every node locks and its consumer hears LOCKED; every consumer
receives only its own node's events (checked again after each fault, with every consumer still
running); the grandmaster stops: every consumer gets HOLDOVER, then, as its next state, FREERUN,
no sooner than holdOverTimeout after its own HOLDOVER; it returns: LOCKED everywhere; node 0's
daemon and its ptp4l are killed (as a container kill does): node 0's consumer gets FREERUN, the
others hear nothing of it, and the other nodes' processes keep running; node 0's daemon is
started again: LOCKED there. Then memory (RSS) and CPU per node in the locked steady state.

SIGTERM (or Ctrl-C) stops the run with the same cleanup as its end. Consumer output lines that
are not JSON, and logged events that are not events, are counted in the result.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ptpfleet-"
GM_NS, NET_NS = PREFIX + "gm", PREFIX + "net"
HOLDOVER_S = 5
PROCESS_DOWN = "-9999999999999999"
THRESHOLD_NS = 50000
API = "/api/ocloudNotifications/v2"


def node_name(i):
    return f"fleet-{i}"


def node_ns(i):
    return f"{PREFIX}n{i}"


def consumer_ns(i):
    return f"{PREFIX}c{i}"


def node_ip(i):
    return f"10.253.0.{10 + i}"


def consumer_ip(i):
    return f"10.253.1.{10 + i}"


def service(node):
    return f"ptp-event-publisher-service-{node}.openshift-ptp.svc.cluster.local"


def log(msg):
    print(f"run-fleet: {msg}", flush=True)


class Failed(Exception):
    pass


def sh(*cmd, check=True):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise Failed(f"{' '.join(map(str, cmd))}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def cleanup():
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        if ns.startswith(PREFIX):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
    for d in Path("/etc/netns").glob(PREFIX + "*") if Path("/etc/netns").exists() else []:
        shutil.rmtree(d, ignore_errors=True)


def find_binary(given):
    if given:
        return Path(given)
    for p in (ROOT / "target/release/ptp-events", ROOT / "target/debug/ptp-events"):
        if p.exists():
            return p
    raise Failed("no ptp-events binary: cargo build --release -p ptp-events (or --binary)")


def ptp4l_path():
    for p in ("/usr/sbin/ptp4l", "/usr/bin/ptp4l"):
        if Path(p).exists():
            return p
    raise Failed("ptp4l not found: apt-get install linuxptp")


class Events:
    """The events one consumer logged, stamped when read (time.monotonic())."""

    def __init__(self, proc, node, logfile):
        self.node, self.proc, self.items, self.lock = node, proc, [], threading.Lock()
        # Lines that are not a log record (a panic's text, say), and "received event" lines
        # whose event is not one: counted and reported, never fatal to this thread.
        self.unparsed, self.bad_events = 0, []
        self.thread = threading.Thread(target=self._read, args=(proc, logfile), daemon=True)
        self.thread.start()

    def _read(self, proc, logfile):
        with open(logfile, "a") as out:
            for line in proc.stdout:
                now = time.monotonic()
                out.write(line)
                out.flush()
                record = self.record(line, now)
                if record is None:
                    with self.lock:
                        self.unparsed += 1
                    continue
                now, msg = record
                if not msg.startswith("received event "):
                    continue
                try:
                    ev = json.loads(msg[len("received event "):])
                    values = ev["data"]["values"]
                    if not (isinstance(ev["source"], str) and values
                            and all(isinstance(v["ResourceAddress"], str) and "value" in v
                                    for v in values)):
                        raise ValueError("no source or values")
                except (ValueError, KeyError, TypeError, IndexError):
                    with self.lock:
                        self.bad_events.append(msg[:200])
                    continue
                with self.lock:
                    self.items.append((now, ev))

    @staticmethod
    def record(line, now):
        """(time, message) of one output line, None when it is not a log record. Here a JSON
        record (`--log-format json`), stamped when it was read."""
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        fields = record.get("fields")
        msg = fields.get("message") if isinstance(fields, dict) else None
        return now, msg if isinstance(msg, str) else ""

    def snapshot(self):
        with self.lock:
            return list(self.items)

    def alive(self):
        return self.proc.poll() is None and self.thread.is_alive()

    def lock_states(self, since=0.0):
        """(time, value, offset) of every lock-state event read at or after `since`."""
        return [(t, ev["data"]["values"][0]["value"],
                 ev["data"]["values"][1]["value"] if len(ev["data"]["values"]) > 1 else None)
                for t, ev in self.snapshot()
                if t >= since and ev["source"].endswith("/sync/ptp-status/lock-state")]


class Fleet:
    def __init__(self, n, binary, scratch):
        self.n, self.bin, self.dir = n, binary, scratch
        self.procs = {}  # (kind, i) -> Popen
        self.events = []
        self.gm = None

    # -- topology --------------------------------------------------------------------------
    def build(self):
        for ns in (GM_NS, NET_NS):
            sh("ip", "netns", "add", ns)
        sh("ip", "-n", GM_NS, "link", "add", "ptpbr", "type", "bridge")
        sh("ip", "-n", NET_NS, "link", "add", "clbr", "type", "bridge")
        for ns, br in ((GM_NS, "ptpbr"), (NET_NS, "clbr")):
            sh("ip", "-n", ns, "link", "set", br, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.cable(GM_NS, "gm0", GM_NS, "gmp", "ptpbr")
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{node_ip(i)} {service(node_name(i))}\n" for i in range(self.n))
        for i in range(self.n):
            sh("ip", "netns", "add", node_ns(i))
            sh("ip", "netns", "add", consumer_ns(i))
            self.cable(node_ns(i), "ens1f0", GM_NS, f"p{i}", "ptpbr")
            self.cable(node_ns(i), "eth0", NET_NS, f"n{i}", "clbr", node_ip(i))
            self.cable(consumer_ns(i), "eth0", NET_NS, f"c{i}", "clbr", consumer_ip(i))
            for ns in (node_ns(i), consumer_ns(i)):
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            etc = Path("/etc/netns") / consumer_ns(i)
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts)

    @staticmethod
    def cable(ns, name, peer_ns, peer, bridge, ip=None):
        sh("ip", "link", "add", name, "netns", ns, "type", "veth", "peer", "name", peer,
           "netns", peer_ns)
        sh("ip", "-n", peer_ns, "link", "set", peer, "master", bridge, "up")
        if ip:
            sh("ip", "-n", ns, "addr", "add", f"{ip}/16", "dev", name)
        sh("ip", "-n", ns, "link", "set", name, "up")

    # -- processes -------------------------------------------------------------------------
    def spawn(self, key, ns, cmd, env=None, stdout=None):
        full = ["ip", "netns", "exec", ns, "env", *[f"{k}={v}" for k, v in (env or {}).items()],
                *map(str, cmd)]
        out = stdout
        if out is None:
            # Appended to: a restarted process (the grandmaster, node 0's daemon) keeps the
            # earlier run's lines (the offsets of the steady state are read from them).
            out = open(self.dir / f"{key[0]}-{key[1]}.log", "a")
            out.write(f"# run-fleet: started at monotonic {time.monotonic():.3f}: "
                      f"{' '.join(map(str, cmd))}\n")
            out.flush()
        p = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, text=True)
        self.procs[key] = p
        return p

    def start_gm(self):
        conf = self.dir / "gm.cfg"
        conf.write_text("[global]\npriority1 127\nclockClass 6\nlogSyncInterval -2\n"
                        "logAnnounceInterval -3\nmasterOnly 1\n"
                        f"uds_address {self.dir / 'gm.sock'}\n")
        self.gm = self.spawn(("gm", 0), GM_NS, [ptp4l_path(), "-2", "-S", "-i", "gm0", "-f",
                                                conf, "-m"])

    def stop_gm(self):
        self.gm.send_signal(signal.SIGKILL)
        self.gm.wait()

    def start_daemon(self, i):
        d = self.dir / node_ns(i)
        profile = [{
            "name": "fleet-slave",
            "interface": "ens1f0",
            "ptp4lOpts": "-2 -S -s",
            "ptp4lConf": "[global]\nclock_servo linreg\nlogSyncInterval -2\n"
                         "logAnnounceInterval -3\nsummary_interval -2\n",
            # Software timestamps of N nodes sharing two cores jitter by several microseconds
            # when the machine is busy (every node at once: the grandmaster's side); the
            # fleet checks the chain, not the clocks, so the thresholds are +-50 us.
            "ptpClockThreshold": {"holdOverTimeout": HOLDOVER_S,
                                  "maxOffsetThreshold": THRESHOLD_NS,
                                  "minOffsetThreshold": -THRESHOLD_NS},
        }]
        # The mounted ptp-configmap: one file per node, read by the daemon (the profiles it
        # runs) and by the producer (each profile's thresholds), as in the DaemonSet.
        (d / "profiles").mkdir(exist_ok=True)
        (d / "profiles" / node_name(i)).write_text(json.dumps(profile))
        return self.spawn(("daemon", i), node_ns(i), [
            self.bin, "daemon", "--node-name", node_name(i), "--profile-dir",
            d / "profiles", "--socket", d / "events.sock", "--run-dir", d / "run",
            "--http-addr", "127.0.0.1:8081", "--emulate-clock-writes", "--stop-grace", "1",
            "--print-lines",
            "--log-format", "json"], env={"LOG_LEVEL": "info"})

    def start_node(self, i):
        d = self.dir / node_ns(i)
        (d / "run").mkdir(parents=True)
        daemon = self.start_daemon(i)
        self.spawn(("proxy", i), node_ns(i), [
            self.bin, "proxy", "--api-bind", node_ip(i), "--api-port", "9043",
            "--metrics-addr", f"{node_ip(i)}:9091", "--socket", d / "events.sock",
            "--store-path", d / "store", "--daemon-api", "http://127.0.0.1:8081",
            "--profile-dir", d / "profiles", "--ptp-config-dir", d / "run",
            "--log-format", "json"],
            env={"NODE_NAME": node_name(i), "LOG_LEVEL": "info"})
        return daemon

    def start_consumer(self, i):
        p = self.spawn(("consumer", i), consumer_ns(i), [
            self.bin, "consumer", "--local-api-addr", f"{consumer_ip(i)}:9089",
            "--http-event-publishers", f"{service(node_name(i))}:9043",
            "--check-interval", "2s", "--log-format", "json"],
            env={"NODE_NAME": node_name(i), "LOG_LEVEL": "info"}, stdout=subprocess.PIPE)
        self.events.append(Events(p, node_name(i), self.dir / f"consumer-{i}.log"))

    def kill_node_daemon(self, i):
        """SIGKILL the daemon and every process it started, as killing its container does."""
        daemon = self.procs[("daemon", i)]
        children = [pid for pid in descendants(daemon.pid)]
        for pid in [daemon.pid, *children]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        daemon.wait()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # -- waiting ---------------------------------------------------------------------------
    def wait_locked_together(self, limit):
        """Waits until every consumer's last lock-state is LOCKED at the same moment."""
        deadline = time.monotonic() + limit
        while True:
            last = [s[-1][1] if (s := ev.lock_states()) else None for ev in self.events]
            if all(v == "LOCKED" for v in last):
                return
            if time.monotonic() > deadline:
                raise Failed(f"the nodes were never all LOCKED together within {limit} s: "
                             f"last lock-states {last}")
            time.sleep(0.02)

    def wait_holdover_then_freerun(self, since, limit):
        """Waits until each consumer has heard, after `since`, HOLDOVER and then, as the next
        lock-state that is not HOLDOVER, FREERUN. Returns ({node: HOLDOVER time}, {node:
        FREERUN time}), both relative to `since`; fails at once if a node's next state after
        its HOLDOVER is not FREERUN."""
        deadline = time.monotonic() + limit
        holdover, freerun = {}, {}
        while True:
            for i in range(self.n):
                if i in freerun:
                    continue
                states = self.events[i].lock_states(since)
                first = next((k for k, (_, v, _) in enumerate(states) if v == "HOLDOVER"), None)
                if first is None:
                    continue
                holdover[i] = states[first][0] - since
                nxt = next(((t, v) for t, v, _ in states[first + 1:] if v != "HOLDOVER"), None)
                if nxt is None:
                    continue
                if nxt[1] != "FREERUN":
                    raise Failed(f"the consumer of {self.events[i].node} heard {nxt[1]} "
                                 f"after its HOLDOVER, not FREERUN")
                freerun[i] = nxt[0] - since
            if len(freerun) == self.n:
                return holdover, freerun
            if time.monotonic() > deadline:
                raise Failed(f"within {limit} s: HOLDOVER at nodes {sorted(holdover)}, FREERUN "
                             f"after it at nodes {sorted(freerun)} (of {self.n}): see "
                             f"{self.dir}/consumer-*.log")
            time.sleep(0.02)

    def check_own_node_only(self, exclude=()):
        """Every consumer (but those of `exclude`) is running, its reader too, and has received
        only its own node's events, every one of them readable."""
        for i, ev in enumerate(self.events):
            if i in exclude:
                continue
            if not ev.alive():
                raise Failed(f"the consumer of {ev.node} is no longer running (exit "
                             f"{ev.proc.poll()})")
            if ev.bad_events:
                raise Failed(f"the consumer of {ev.node} logged events that are not "
                             f"events: {ev.bad_events[:3]}")
            own = f"/cluster/node/{ev.node}/"
            foreign = [e["source"] for _, e in ev.snapshot()
                       if not all(v["ResourceAddress"].startswith(own)
                                  for v in e["data"]["values"])]
            if foreign:
                raise Failed(f"the consumer of {ev.node} received another node's events: "
                             f"{foreign[:3]}")

    def wait_all(self, value, since, limit, nodes=None, offset=None):
        """Waits until each consumer (of `nodes`, default all) has a lock-state `value` (with
        `offset`, when given) read at or after `since`; returns each one's first such time,
        relative to `since`."""
        nodes = range(self.n) if nodes is None else nodes
        deadline = time.monotonic() + limit
        got = {}
        while True:
            for i in nodes:
                if i not in got:
                    hits = [t for t, v, o in self.events[i].lock_states(since)
                            if v == value and (offset is None or o == offset)]
                    if hits:
                        got[i] = hits[0] - since
            if len(got) == len(nodes):
                return got
            if time.monotonic() > deadline:
                missing = sorted(set(nodes) - set(got))
                raise Failed(f"no lock-state {value} within {limit} s at the consumers of "
                             f"nodes {missing}: see {self.dir}/consumer-*.log")
            time.sleep(0.02)


def descendants(pid):
    """Every process whose parent chain leads to `pid`."""
    parent = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                parent[int(p.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [c for c, pp in parent.items() if pp == cur]
        out += kids
        todo += kids
    return out


def proc_usage(pid):
    """(RSS KiB, CPU seconds) of one process: the CPU from every thread's schedstat
    (nanoseconds), not from the 10 ms ticks of stat."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:"))
    ns = 0
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            ns += int((t / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return rss, ns / 1e9


def max_abs_offset(daemon_log, start, end):
    """The largest |master offset| ptp4l printed between `start` and `end` (CLOCK_MONOTONIC
    seconds, which ptp4l's own timestamps are)."""
    worst = 0
    for line in Path(daemon_log).read_text().splitlines():
        if "master offset" not in line or not line.startswith("ptp4l["):
            continue
        try:
            t = float(line[len("ptp4l["):line.index("]")])
            off = int(line.split("master offset")[1].split()[0])
        except (ValueError, IndexError):
            continue
        if start <= t <= end:
            worst = max(worst, abs(off))
    return worst


def spread(times):
    v = sorted(times.values())
    return {"first_s": round(v[0], 3), "last_s": round(v[-1], 3),
            "median_s": round(v[len(v) // 2], 3)}


def run(args):
    binary = find_binary(args.binary)
    scratch = Path(tempfile.mkdtemp(prefix="ptp-fleet-"))
    result = {"nodes": args.nodes, "binary": str(binary)}
    cleanup()
    fleet = Fleet(args.nodes, binary, scratch)
    ok = False
    try:
        fleet.build()
        fleet.start_gm()
        t0 = time.monotonic()
        for i in range(args.nodes):
            fleet.start_node(i)
        for i in range(args.nodes):
            fleet.start_consumer(i)
        locked = fleet.wait_all("LOCKED", t0, 60 + 2 * args.nodes)
        result["start_to_locked"] = spread(locked)
        log(f"{args.nodes} nodes locked; the last consumer heard LOCKED {spread(locked)['last_s']} s after the start")

        # Steady state: memory and CPU per node over 10 s.
        fleet.wait_locked_together(60)
        time.sleep(2)
        steady = time.monotonic()
        pids = {i: [fleet.procs[("proxy", i)].pid, fleet.procs[("daemon", i)].pid,
                    *descendants(fleet.procs[("daemon", i)].pid)] for i in range(args.nodes)}
        before = {pid: proc_usage(pid) for ps in pids.values() for pid in ps}
        window = 10.0
        time.sleep(window)
        after = {pid: proc_usage(pid) for ps in pids.values() for pid in ps}
        per_node = []
        for i, ps in pids.items():
            rss = sum(after[p][0] for p in ps)
            cpu = sum(after[p][1] - before[p][1] for p in ps)
            per_node.append((rss, cpu / window))
        rss = sorted(r for r, _ in per_node)
        cpu = sorted(c for _, c in per_node)
        proxy_rss = sorted(after[fleet.procs[("proxy", i)].pid][0] for i in range(args.nodes))
        consumer_rss = sorted(proc_usage(fleet.procs[("consumer", i)].pid)[0]
                              for i in range(args.nodes))
        result["per_node"] = {
            "rss_mib_median": round(rss[len(rss) // 2] / 1024, 1),
            "rss_mib_max": round(rss[-1] / 1024, 1),
            "producer_rss_mib_median": round(proxy_rss[len(proxy_rss) // 2] / 1024, 1),
            "consumer_rss_mib_median": round(consumer_rss[len(consumer_rss) // 2] / 1024, 1),
            "cpu_percent_median": round(100 * cpu[len(cpu) // 2], 3),
            "cpu_percent_max": round(100 * cpu[-1], 3),
        }
        log(f"per node (daemon + ptp4l + producer): RSS median {result['per_node']['rss_mib_median']} MiB "
            f"(the producer {result['per_node']['producer_rss_mib_median']}), CPU median "
            f"{result['per_node']['cpu_percent_median']} % of a core; a consumer "
            f"{result['per_node']['consumer_rss_mib_median']} MiB")
        load = Path("/proc/loadavg").read_text().split()[0]
        result["loadavg_1m"] = float(load)
        flaps = sorted(sum(1 for _, v, _ in fleet.events[i].lock_states(steady) if v != "LOCKED")
                       for i in range(args.nodes))
        offsets = sorted(max_abs_offset(scratch / f"daemon-{i}.log", steady, steady + window)
                         for i in range(args.nodes))
        result["per_node"]["max_abs_offset_ns_in_window"] = {
            "median": offsets[len(offsets) // 2], "max": offsets[-1]}
        log(f"largest |offset| per node in the window (software timestamps): median "
            f"{offsets[len(offsets) // 2]} ns, max {offsets[-1]} ns")
        result["per_node"]["lock_losses_in_steady_state_window"] = {
            "median": flaps[len(flaps) // 2], "max": flaps[-1], "window_s": window}
        log(f"lock losses per node in the {window:.0f} s window: median {flaps[len(flaps) // 2]}, "
            f"max {flaps[-1]}")

        # Every consumer hears only its own node (checked again after each fault).
        fleet.check_own_node_only()

        # The grandmaster goes away, then comes back.
        fleet.wait_locked_together(60)
        t = time.monotonic()
        fleet.stop_gm()
        holdover, freerun = fleet.wait_holdover_then_freerun(t, HOLDOVER_S + 20)
        # Each node's FREERUN comes its holdOverTimeout after its own HOLDOVER, not earlier.
        gap = {i: freerun[i] - holdover[i] for i in range(args.nodes)}
        early = {node_name(i): round(g, 3) for i, g in gap.items() if g < HOLDOVER_S - 0.25}
        if early:
            raise Failed(f"FREERUN came less than holdOverTimeout ({HOLDOVER_S} s) after the "
                         f"node's own HOLDOVER: {early}")
        result["gm_loss_to_holdover"] = spread(holdover)
        result["gm_loss_to_freerun"] = spread(freerun)
        result["holdover_to_freerun_per_node"] = spread(gap)
        log(f"grandmaster lost: HOLDOVER at every consumer within {spread(holdover)['last_s']} s, "
            f"FREERUN within {spread(freerun)['last_s']} s (each node's "
            f"{spread(gap)['first_s']}-{spread(gap)['last_s']} s after its own HOLDOVER)")
        fleet.check_own_node_only()
        t = time.monotonic()
        fleet.start_gm()
        back = fleet.wait_all("LOCKED", t, 60 + 2 * args.nodes)
        result["gm_return_to_locked"] = spread(back)
        log(f"grandmaster back: LOCKED at every consumer within {spread(back)['last_s']} s")

        # One node's daemon is killed: only that node's consumer hears of it.
        fleet.wait_locked_together(60)
        t = time.monotonic()
        fleet.kill_node_daemon(0)
        down = fleet.wait_all("FREERUN", t, 30, nodes=[0], offset=PROCESS_DOWN)
        time.sleep(3)
        told = {i: s for i in range(1, args.nodes)
                if (s := [e for e in fleet.events[i].lock_states(t) if e[2] == PROCESS_DOWN])}
        if told:
            raise Failed(f"node {node_name(0)}'s daemon was killed, and other nodes' consumers "
                         f"heard of a process down: {told}")
        fleet.check_own_node_only()
        others_down = [k for k, p in fleet.procs.items()
                       if k[1] != 0 and k[0] in ("daemon", "proxy") and p.poll() is not None]
        if others_down:
            raise Failed(f"node {node_name(0)}'s daemon was killed, and these of other nodes "
                         f"exited: {others_down}")
        noise = sum(1 for i in range(1, args.nodes)
                    for _, v, _ in fleet.events[i].lock_states(t) if v != "LOCKED")
        result["daemon_kill_to_freerun_s"] = round(down[0], 3)
        result["other_nodes_lock_losses_meanwhile"] = noise
        log(f"{node_name(0)}'s daemon killed: its consumer heard FREERUN (process down) after "
            f"{down[0]:.3f} s; the other {args.nodes - 1} consumers heard no process down"
            f" ({noise} lock losses of their own meanwhile: timestamp noise)")
        t = time.monotonic()
        fleet.start_daemon(0)
        again = fleet.wait_all("LOCKED", t, 60, nodes=[0])
        result["daemon_restart_to_locked_s"] = round(again[0], 3)
        log(f"{node_name(0)}'s daemon started again: LOCKED after {again[0]:.3f} s")
        fleet.check_own_node_only()
        ok = True
    finally:
        # A second SIGTERM must not interrupt the cleanup.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        result["consumer_lines_not_json"] = sum(ev.unparsed for ev in fleet.events)
        result["consumer_unreadable_events"] = sum(len(ev.bad_events) for ev in fleet.events)
        if result["consumer_lines_not_json"] or result["consumer_unreadable_events"]:
            log(f"consumer output: {result['consumer_lines_not_json']} lines not JSON, "
                f"{result['consumer_unreadable_events']} unreadable events (see "
                f"{scratch}/consumer-*.log)")
        fleet.stop()
        cleanup()
        if ok and not args.keep_logs:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"logs kept in {scratch}")
    result["passed"] = ok
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3, help="emulated nodes (1 to 200)")
    ap.add_argument("--binary", help="the ptp-events binary")
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.nodes <= 200:
        ap.error("--nodes must be between 1 and 200")
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces)")
    # SIGTERM becomes SystemExit, so that run()'s finally stops the processes and deletes the
    # namespaces (SIGKILL cannot be caught: the test's teardown cleans up after that).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        run(args)
    except Failed as e:
        log(f"FAILED: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
