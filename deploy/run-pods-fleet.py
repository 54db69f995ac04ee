#!/usr/bin/env python3
"""A cluster on one machine, with containers: N emulated nodes sharing one grandmaster, each
running the rendered DaemonSet pod (init container, daemon, producer) and the reference
consumer's pod under podman, as a kubelet would; each consumer reaches its own node's producer
through the node's Service name, as in the documented deployment.

    deploy/run-pods-fleet.py [--nodes N] [--image IMAGE] [--json FILE] [--keep-logs]

Root, podman, iproute2, curl, linuxptp on the host (the grandmaster), `kustomize` or
`kubectl`, PyYAML, and the image (default localhost/ptp-events:0.1.0; docs/kubernetes.md,
docs/fleet.md). The pods are run by deploy/run-pods.py's pod runner (its `Pod`: image, command,
args, env, volumes, security context and memory limit of each container, as the spec says); the
topology and the checks are deploy/run-fleet.py's (its `Fleet` and `Events`), with containers.

The topology, in network namespaces it creates and deletes (`pe-podfleet-*`):
- `pe-podfleet-gm`: the grandmaster, the host's `ptp4l -2 -S` on `gm0`, cabled to the bridge
  `ptpbr` (the PTP network);
- `pe-podfleet-net`: the bridge `clbr` (the cluster network);
- `pe-podfleet-n<i>`, node `worker-<i>`: its NIC `ens1f0` on `ptpbr`, `eth0` with the node IP
  10.252.0.<10+i> on `clbr`; the DaemonSet pod (hostNetwork) runs there;
- `pe-podfleet-c<i>`: node i's consumer pod, pod IP 10.252.1.<10+i>, NODE_NAME=worker-<i>.
Every node's publisher Service name resolves in every consumer pod to that node's IP (cluster
DNS): a consumer could reach any node's producer and must pick its own by its NODE_NAME. The
consumer's own Service name resolves, in node i's pods and in consumer i's, to consumer i (a
Service per node's consumer, which one Deployment behind one Service would not give).

What differs from the rendered objects, and why: the node profile gets what a veth needs
(run-pods.py's `software_profiles`), with thresholds of +-50 us (software timestamps of N nodes
on one bridge: docs/fleet.md); the daemon container's args get `--emulate-clock-writes` (N
ptp4l -S would otherwise all steer the one host clock; the shim is in the image's binary).

Checks, each with its time: every node's consumer subscribes to its own node's producer only and
hears LOCKED; every consumer receives only its own node's events (checked again after each
fault, with every consumer container running); the grandmaster stops: every consumer gets
HOLDOVER, then FREERUN no sooner than holdOverTimeout after its own HOLDOVER; it returns:
LOCKED everywhere; node 0's daemon container is SIGKILLed (its ptp4l dies with it): node 0's
consumer gets FREERUN with the process-down offset, no other consumer hears of it, and the
other nodes' containers keep running; it is started again (as a kubelet does): LOCKED there.
Then each container's memory peak (its cgroup), which must stay under its limit.
"""

import argparse
import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent


def load(name, file):
    spec = importlib.util.spec_from_file_location(name, DEPLOY / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pods = load("run_pods", "run-pods.py")
fleet = load("run_fleet", "run-fleet.py")
Failed, sh, spread = fleet.Failed, fleet.sh, fleet.spread

PREFIX = "pe-podfleet-"
GM_NS, NET_NS = PREFIX + "gm", PREFIX + "net"
CONTAINER_PREFIX = "podfleet-"
THRESHOLD_NS = 50000
CONSUMER_SVC = "consumer-events-subscription-service.cloud-events.svc.cluster.local"
GM_CONF = ("[global]\npriority1 127\nclockClass 6\nlogSyncInterval -2\nmasterOnly 1\n"
           "domainNumber {domain}\n")


def node_name(i):
    return f"worker-{i}"


def node_ip(i):
    return f"10.252.0.{10 + i}"


def consumer_ip(i):
    return f"10.252.1.{10 + i}"


def log(msg):
    print(f"run-pods-fleet: {msg}", flush=True)


def cleanup():
    """Removes every container and namespace of this tool (also those of an earlier run)."""
    names = sh("podman", "ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    mine = [n for n in names if n.startswith(CONTAINER_PREFIX)]
    if mine:
        sh("podman", "rm", "-f", "-t", "0", *mine, check=False)
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        if ns.startswith(PREFIX):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)


def running(name):
    return sh("podman", "inspect", "-f", "{{.State.Running}}", name,
              check=False).stdout.strip() == "true"


class ContainerLog:
    """The lines a container writes, followed in its k8s-file log (`tail -F` of the file
    podman writes it to), each reassembled from its partial entries. `podman logs -f` is not used: with
    150 consumers it was 150 podman processes, and podman 4.3.1's follower read a line while
    conmon was writing it ("... is not a valid container log line"), handing on half an event."""

    def __init__(self, name):
        log = sh("podman", "container", "inspect", "-f",
                 "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Path}}",
                 name).stdout.split()
        if len(log) != 2 or log[0] != "k8s-file":
            raise Failed(f"{name}: log {log}: only podman's k8s-file log driver is read")
        path = log[1]
        self.tail = subprocess.Popen(["tail", "-F", "-n", "+1", path], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.stdout = self._lines()

    def _lines(self):
        # <time> stdout|stderr F|P <text>: P is a part, F ends the line.
        parts = []
        for entry in self.tail.stdout:
            fields = entry.rstrip("\n").split(" ", 3)
            if len(fields) < 3:
                continue
            parts.append(fields[3] if len(fields) == 4 else "")
            if fields[2] == "F":
                yield "".join(parts) + "\n"
                parts = []

    def poll(self):
        return self.tail.poll()

    def send_signal(self, sig):
        self.tail.send_signal(sig)

    def wait(self, timeout=None):
        return self.tail.wait(timeout)

    def kill(self):
        self.tail.kill()


class PodEvents(fleet.Events):
    """The events a consumer container logged (its log, the manifest's text format),
    each stamped with the time in its own log line (the host's clock: the containers share it),
    on time.monotonic()'s scale."""

    WALL_TO_MONO = time.time() - time.monotonic()

    def __init__(self, proc, node, logfile, container):
        self.container = container
        super().__init__(proc, node, logfile)

    @classmethod
    def record(cls, line, now):
        # 2026-12-04T11:37:12.840736Z  INFO ptp_events::consumer: received event {...}
        stamp, _, rest = line.strip().partition(" ")
        level, _, rest = rest.strip().partition(" ")
        target, sep, msg = rest.partition(": ")
        if not sep or level not in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR"):
            return None
        try:
            wall = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
        return wall - cls.WALL_TO_MONO, msg

    def alive(self):
        return running(self.container) and self.thread.is_alive()


class PodFleet(fleet.Fleet):
    """run-fleet's Fleet (its waits and checks), with each node's pods under podman."""

    def __init__(self, n, opts, scratch):
        super().__init__(n, None, scratch)
        self.opts = opts
        self.runs, self.ptp, self.consumers = [], [], []
        self.gm_proc = None

    def build(self):
        for ns in (GM_NS, NET_NS):
            sh("ip", "netns", "add", ns)
        sh("ip", "-n", GM_NS, "link", "add", "ptpbr", "type", "bridge")
        sh("ip", "-n", NET_NS, "link", "add", "clbr", "type", "bridge")
        for ns, br in ((GM_NS, "ptpbr"), (NET_NS, "clbr")):
            sh("ip", "-n", ns, "link", "set", br, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.cable(GM_NS, "gm0", GM_NS, "gmp", "ptpbr")
        for i in range(self.n):
            sh("ip", "netns", "add", PREFIX + f"n{i}")
            sh("ip", "netns", "add", PREFIX + f"c{i}")
            self.cable(PREFIX + f"n{i}", "ens1f0", GM_NS, f"p{i}", "ptpbr")
            self.cable(PREFIX + f"n{i}", "eth0", NET_NS, f"n{i}", "clbr", node_ip(i))
            self.cable(PREFIX + f"c{i}", "eth0", NET_NS, f"c{i}", "clbr", consumer_ip(i))
            for ns in (PREFIX + f"n{i}", PREFIX + f"c{i}"):
                sh("ip", "-n", ns, "link", "set", "lo", "up")

    def start_gm(self):
        conf = self.dir / "gm.cfg"
        conf.write_text(GM_CONF.format(domain=self.domain))
        self.gm = self.spawn(("gm", 0), GM_NS, [fleet.ptp4l_path(), "-2", "-S", "-i", "gm0",
                                                "-f", conf, "-m"])

    def prepare(self, daemonset, consumer_dep, configmaps, profiles):
        """One run-pods `Run` per node: its scratch directory, its hostPath root, its
        configMaps (the node's profile under its name), its spec.nodeName and status.hostIP."""
        self.daemonset, self.consumer_dep = daemonset, consumer_dep
        m = re.search(r"domainNumber\s+(\d+)", profiles[0].get("ptp4lConf", ""))
        self.domain = int(m.group(1)) if m else 0
        for i in range(self.n):
            run = pods.Run(self.opts.image, self.opts.keep_logs)
            run.node, run.node_ip, run.node_ns = node_name(i), node_ip(i), PREFIX + f"n{i}"
            run.binary = None  # the image's own binary: no override here
            run.configmaps = {**configmaps, "ptp-configmap": {node_name(i): json.dumps(profiles)}}
            self.runs.append(run)

    def hosts(self, i):
        """What cluster DNS answers in node i's pods (the consumer's Service: node i's)."""
        return {**{f"ptp-event-publisher-service-{node_name(k)}.openshift-ptp.svc.cluster.local":
                   node_ip(k) for k in range(self.n)},
                CONSUMER_SVC: consumer_ip(i)}

    def start_node(self, i):
        pod = pods.Pod(self.runs[i], self.daemonset, f"{CONTAINER_PREFIX}n{i}-linuxptp-daemon",
                       PREFIX + f"n{i}", node_ip(i), self.hosts(i))
        pod.start()
        self.ptp.append(pod)

    def start_consumer(self, i):
        pod = pods.Pod(self.runs[i], self.consumer_dep, f"{CONTAINER_PREFIX}n{i}-consumer",
                       PREFIX + f"c{i}", consumer_ip(i), self.hosts(i))
        pod.start()
        self.consumers.append(pod)
        name = pod.cname(pod.container("cloud-event-consumer"))
        p = ContainerLog(name)
        self.procs[("consumer-log", i)] = p
        self.events.append(PodEvents(p, node_name(i), self.dir / f"consumer-{i}.log", name))

    def kill_daemon(self, i):
        """SIGKILL of node i's daemon container (its ptp4l dies with it: the container's PID
        namespace); the container is removed, as a kubelet does before it starts a new one."""
        c = self.ptp[i].container("linuxptp-daemon-container")
        name = self.ptp[i].cname(c)
        sh("podman", "kill", "-s", "KILL", name)
        sh("podman", "rm", "-f", name)
        self.runs[i].containers.remove(name)

    def start_daemon(self, i):
        c = self.ptp[i].container("linuxptp-daemon-container")
        self.ptp[i].run_container(c, detach=True)
        self.runs[i].containers.append(self.ptp[i].cname(c))

    def check_own_node_only(self, exclude=()):
        super().check_own_node_only(exclude)
        self.check_publishers()

    def check_publishers(self):
        """Each consumer's log names its own node's publisher Service, and no other."""
        for i in range(self.n):
            named = publishers_named(self.dir / f"consumer-{i}.log")
            if named != {node_name(i)}:
                raise Failed(f"the consumer of {node_name(i)} named the publishers of "
                             f"{sorted(named)}")

    def containers(self):
        return [c for run in self.runs for c in run.containers]

    def stop(self):
        super().stop()
        for run in self.runs:
            run.cleanup()


def container_rss(cid):
    """The summed RSS (bytes) of every process in a container's memory cgroup (cgroup v1), or
    None. Unlike the cgroup's peak, it counts the pages of the binary the process maps (file
    pages another container or the host already had in the page cache are charged there)."""
    for base in (Path("/sys/fs/cgroup/memory/libpod_parent") / f"libpod-{cid}",
                 Path("/sys/fs/cgroup/memory/machine.slice") / f"libpod-{cid}.scope"):
        procs = base / "cgroup.procs"
        if procs.exists():
            total = 0
            for pid in procs.read_text().split():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                total += next((int(l.split()[1]) * 1024 for l in status.splitlines()
                               if l.startswith("VmRSS:")), 0)
            return total
    return None


def read_text(path):
    """A log's text so far; empty before its reader has created it."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return ""


def publishers_named(logfile):
    """The node of every publisher Service a consumer's log names (the address it subscribed
    through, the CurrentState it asked)."""
    text = read_text(logfile)
    return set(re.findall(r"ptp-event-publisher-service-([a-z0-9-]+?)\.openshift-ptp", text))


def subscriptions(i):
    out = sh("ip", "netns", "exec", PREFIX + f"n{i}", "curl", "-fsS", "-m", "2",
             f"http://{node_ip(i)}:9043{fleet.API}/subscriptions", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def run(opts):
    started = time.monotonic()
    daemonset = next(d for d in pods.render("overlays/events") if d["kind"] == "DaemonSet")
    daemon_c = next(c for c in daemonset["spec"]["template"]["spec"]["containers"]
                    if c["name"] == "linuxptp-daemon-container")
    daemon_c["args"] = [*daemon_c.get("args", []), "--emulate-clock-writes"]
    consumer_dep = next(d for d in pods.render("consumer") if d["kind"] == "Deployment")
    configmaps = {}
    for rel in ("overlays/events", "consumer"):
        for d in pods.render(rel):
            if d["kind"] == "ConfigMap":
                configmaps[d["metadata"]["name"]] = d.get("data", {})
    profiles = pods.software_profiles(configmaps["ptp-configmap"][pods.NODE])
    for p in profiles:
        p["ptpClockThreshold"].update({"maxOffsetThreshold": THRESHOLD_NS,
                                       "minOffsetThreshold": -THRESHOLD_NS})
    holdover_s = profiles[0]["ptpClockThreshold"].get("holdOverTimeout", 5)
    log(f"node profile: {json.dumps(profiles)}")

    version = sh("podman", "--version").stdout.strip()
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    image_version = sh("podman", "run", "--rm", "--pull", "never", "--ulimit",
                       f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096", opts.image,
                       "--version").stdout.strip()
    image_id = sh("podman", "image", "inspect", "-f", "{{.Id}}", opts.image).stdout.strip()
    result = {"nodes": opts.nodes, "image": opts.image, "image_id": image_id[:12],
              "image_binary": image_version, "podman": version}
    log(f"{opts.image} ({image_id[:12]}): {image_version}; {version}")
    cleanup()
    scratch = Path(tempfile.mkdtemp(prefix="ptp-podfleet-"))
    f = PodFleet(opts.nodes, opts, scratch)
    ok = False
    try:
        f.prepare(daemonset, consumer_dep, configmaps, profiles)
        f.build()
        f.start_gm()
        t0 = time.monotonic()
        for i in range(opts.nodes):
            f.start_node(i)
        result["pods_started_s"] = round(time.monotonic() - t0, 3)
        store = [(r.host_root / "var/lib/ptp-events").stat() for r in f.runs]
        if any((st.st_uid, st.st_mode & 0o7777) != (65532, 0o700) for st in store):
            raise Failed("a node's store after its init container is not uid 65532, mode 0700")
        for i in range(opts.nodes):
            proxy = f.ptp[i].container("cloud-event-proxy")
            pods.wait_for(f"{node_name(i)}'s producer's readiness probe",
                          lambda: f.ptp[i].probe(proxy), 60)
        result["start_to_producers_ready_s"] = round(time.monotonic() - t0, 3)
        log(f"{opts.nodes} DaemonSet pods started in {result['pods_started_s']} s (init "
            f"container, then daemon and producer, node after node); every producer ready "
            f"{result['start_to_producers_ready_s']} s after the first pod's start")
        for i in range(opts.nodes):
            f.start_consumer(i)
        # Every consumer subscribed through its own node's publisher Service (every publisher
        # name resolves in its pod), and every node's producer holds one consumer's share.
        for i in range(opts.nodes):
            pods.wait_for(f"the subscriptions of {node_name(i)}'s consumer",
                          lambda: "all subscriptions created successfully" in
                          read_text(f.dir / f"consumer-{i}.log"), 60)
        per_node = {i: len(subscriptions(i) or []) for i in range(opts.nodes)}
        if len(set(per_node.values())) != 1 or per_node[0] == 0:
            raise Failed(f"subscriptions per node: {per_node}: not one consumer's each")
        f.check_publishers()
        result["subscriptions_per_node"] = per_node[0]
        log(f"every consumer subscribed through its own node's publisher Service: "
            f"{per_node[0]} subscriptions on each node's producer")
        locked = f.wait_all("LOCKED", t0, 90 + 3 * opts.nodes)
        result["start_to_locked"] = spread(locked)
        log(f"every consumer heard LOCKED; the last {spread(locked)['last_s']} s after the first "
            f"pod started")
        f.check_own_node_only()

        # The grandmaster goes away, then comes back.
        f.wait_locked_together(90)
        time.sleep(2)
        t = time.monotonic()
        f.stop_gm()
        holdover, freerun = f.wait_holdover_then_freerun(t, holdover_s + 30)
        gap = {i: freerun[i] - holdover[i] for i in range(opts.nodes)}
        early = {node_name(i): round(g, 3) for i, g in gap.items() if g < holdover_s - 0.25}
        if early:
            raise Failed(f"FREERUN came less than holdOverTimeout ({holdover_s} s) after the "
                         f"node's own HOLDOVER: {early}")
        result["gm_loss_to_holdover"] = spread(holdover)
        result["gm_loss_to_freerun"] = spread(freerun)
        result["holdover_to_freerun_per_node"] = spread(gap)
        log(f"grandmaster lost: HOLDOVER at every consumer within {spread(holdover)['last_s']} s "
            f"(first {spread(holdover)['first_s']} s), FREERUN within "
            f"{spread(freerun)['last_s']} s")
        f.check_own_node_only()
        t = time.monotonic()
        f.start_gm()
        back = f.wait_all("LOCKED", t, 90 + 3 * opts.nodes)
        result["gm_return_to_locked"] = spread(back)
        log(f"grandmaster back: LOCKED at every consumer within {spread(back)['last_s']} s "
            f"(first {spread(back)['first_s']} s)")

        # Node 0's daemon container is killed: only node 0's consumer hears of it.
        f.wait_locked_together(90)
        time.sleep(2)
        t = time.monotonic()
        f.kill_daemon(0)
        down = f.wait_all("FREERUN", t, 30, nodes=[0], offset=fleet.PROCESS_DOWN)
        time.sleep(3)
        told = {i: s for i in range(1, opts.nodes)
                if (s := [e for e in f.events[i].lock_states(t) if e[2] == fleet.PROCESS_DOWN])}
        if told:
            raise Failed(f"{node_name(0)}'s daemon was killed, and other nodes' consumers heard "
                         f"of a process down: {told}")
        f.check_own_node_only()
        stopped = [c for c in f.containers() if not running(c)]
        if stopped:
            raise Failed(f"{node_name(0)}'s daemon was killed, and these containers are not "
                         f"running: {stopped}")
        noise = sum(1 for i in range(1, opts.nodes)
                    for _, v, _ in f.events[i].lock_states(t) if v != "LOCKED")
        result["daemon_kill_to_freerun_s"] = round(down[0], 3)
        result["other_nodes_lock_losses_meanwhile"] = noise
        log(f"{node_name(0)}'s daemon container killed: its consumer heard FREERUN (process "
            f"down) after {down[0]:.3f} s; the other {opts.nodes - 1} consumers heard nothing of "
            f"it ({noise} lock losses of their own meanwhile), every other container runs")
        t = time.monotonic()
        f.start_daemon(0)
        again = f.wait_all("LOCKED", t, 90, nodes=[0])
        result["daemon_restart_to_locked_s"] = round(again[0], 3)
        log(f"{node_name(0)}'s daemon container started again: LOCKED after {again[0]:.3f} s")
        f.check_own_node_only()

        # Each container's memory peak, against its limit; and its processes' RSS now.
        peaks, rss = {}, {}
        for pod_list in (f.ptp, f.consumers):
            for pod in pod_list:
                for c in pod.spec["containers"]:
                    cid = sh("podman", "inspect", "-f", "{{.Id}}", pod.cname(c)).stdout.strip()
                    peak = pods.memory_peak(cid)
                    r = container_rss(cid)
                    if r is not None:
                        rss.setdefault(c["name"], []).append(r)
                    if peak is None:
                        continue
                    limit = pods.quantity_bytes(c["resources"]["limits"]["memory"])
                    if peak >= limit:
                        raise Failed(f"{pod.cname(c)}: memory peak {peak} >= limit {limit}")
                    peaks.setdefault(c["name"], []).append(peak)
                    peaks.setdefault(c["name"] + " limit", limit)
        result["memory_peak_mib"] = {
            name: {"median": round(sorted(v)[len(v) // 2] / 2**20, 1),
                   "max": round(max(v) / 2**20, 1),
                   "limit": round(peaks[name + " limit"] / 2**20)}
            for name, v in peaks.items() if not name.endswith(" limit")}
        result["rss_mib"] = {name: {"median": round(sorted(v)[len(v) // 2] / 2**20, 1),
                                    "max": round(max(v) / 2**20, 1)} for name, v in rss.items()}
        for name, v in result["memory_peak_mib"].items():
            r = result["rss_mib"].get(name, {})
            log(f"{name}: memory peak of its cgroup median {v['median']} MiB, max {v['max']} "
                f"MiB (limit {v['limit']} MiB); RSS of its processes median {r.get('median')} "
                f"MiB, max {r.get('max')} MiB")
        if not peaks:
            log("memory peaks not readable (no cgroup v1 memory accounting)")
        ok = True
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        result["consumer_lines_unparsed"] = sum(ev.unparsed for ev in f.events)
        result["consumer_unreadable_events"] = sum(len(ev.bad_events) for ev in f.events)
        if not ok:
            for c in f.containers():
                out = sh("podman", "logs", "--tail", "8", c, check=False)
                print(f"--- {c}\n{out.stdout}{out.stderr}", file=sys.stderr)
        f.stop()
        cleanup()
        if ok and not opts.keep_logs:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"logs kept in {scratch}")
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["passed"] = ok
    if opts.json:
        Path(opts.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    log(f"passed in {result['wall_s']:.0f} s")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3, help="emulated nodes (1 to 200)")
    ap.add_argument("--image", default="localhost/ptp-events:0.1.0")
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--keep-logs", action="store_true")
    opts = ap.parse_args()
    if not 1 <= opts.nodes <= 200:
        ap.error("--nodes must be between 1 and 200")
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces, podman)")
    for tool in ("podman", "ip", "curl", "ptp4l"):
        if not shutil.which(tool):
            sys.exit(f"run-pods-fleet: {tool} not found")
    if pods.hybrid_cgroups() and not os.environ.get("RUN_PODS_UNSHARED"):
        # As run-pods.py: a private mount namespace without the v2 hierarchy, for crun.
        os.execvp("unshare", ["unshare", "-m", "sh", "-c",
                              'umount /sys/fs/cgroup/unified && RUN_PODS_UNSHARED=1 exec "$@"',
                              "sh", sys.executable, *sys.argv])
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        run(opts)
    except Failed as e:
        log(f"FAILED: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
