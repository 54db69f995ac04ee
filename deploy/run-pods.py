#!/usr/bin/env python3
"""Runs the rendered manifests' pods under a real OCI runtime (podman), as a kubelet would, on
one emulated node with no cluster, and checks the whole chain end to end.

    deploy/run-pods.py [--image IMAGE] [--keep-logs]      (root; default localhost/ptp-events:0.1.0)

Build the image first (see docs/kubernetes.md). Needs root, podman, iproute2, curl, linuxptp on
the host (the grandmaster), `kustomize` or `kubectl`, and PyYAML.

What it runs, from `kustomize build` of `overlays/events` and `consumer`:
- the `linuxptp-daemon` pod (init container `store-permissions`, then the daemon and the
  producer, `cloud-event-proxy`), with hostNetwork: the "node" is a network namespace with a
  NIC-like veth `ens1f0`, cabled to a grandmaster (the host's ptp4l -2 -S in another namespace),
  and an address on a pod network;
- the reference consumer's pod, in a namespace of its own on that pod network.
Each container gets what its spec says: image, command, args, env (fieldRef `spec.nodeName`,
`status.hostIP`, `status.podIP`), volumes (configMap as read-only files, emptyDir, hostPath under
a scratch "host" directory), and the security context: runAsUser/runAsGroup, fsGroup,
runAsNonRoot (checked), privileged, allowPrivilegeEscalation, readOnlyRootFilesystem (no tmpfs
added), capabilities, seccomp (RuntimeDefault: the runtime's default profile; unset:
unconfined, as a kubelet's default), and the memory limit. Service names resolve (as cluster DNS
would) to the pod that backs them. Readiness probes are polled as the kubelet would.

The one change to the rendered objects: the example profile in `ptp-configmap` gets what a veth
needs (software timestamps, servo `linreg`, thresholds of +-5000 ns, no phc2sys: see
`software_profiles`); everything else in it (its ptp4lOpts, domain, slaveOnly) is kept.

Checks: the init container hands the store to uid 65532 (0700); the running producer has uid
65532, no capabilities, no_new_privs, seccomp filtering and a read-only root; the probes pass;
the consumer subscribes; the node's clock locks and the consumer hears LOCKED (for the port's
alias, ens1fx, as the Go producer names it); the grandmaster
stops: HOLDOVER then FREERUN reach the consumer; the producer container is killed and started
again (as a kubelet restarts it): the subscription is still there (the hostPath store), the
producer says FREERUN and publishes no LOCKED while the grandmaster is away, and its return
reaches the consumer as LOCKED without it subscribing again; the daemon container is killed and
started again: one new ptp4l, LOCKED again; each container's memory peak stays under its limit.

On some machines podman's OCI runtime (crun) refuses to start containers: with cgroup v1 and a
cgroup v2 hierarchy that has controllers ("hybrid mode"), and when it cannot raise resource
limits. This script then runs itself in a private mount namespace without the v2 mount, and it
always gives the containers explicit limits (open files: this process's hard limit; processes:
4096). Neither changes what is tested.
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
K8S = DEPLOY / "kubernetes"
NODE = "worker-0"
NODE_IP = "10.251.0.1"
CONSUMER_IP = "10.251.0.2"
API = "/api/ocloudNotifications/v2"
LOCK_STATE = f"/cluster/node/{NODE}/sync/ptp-status/lock-state"
# The port's name in the events: the daemon's alias of ens1f0 (GET /port-aliases, Go's rule: the
# last character becomes x), which the producer asks for first, as the Go producer does.
PORT = "ens1fx"
GM_CONF = "[global]\npriority1 127\nclockClass 6\nlogSyncInterval -2\nmasterOnly 1\ndomainNumber {domain}\n"


def software_profiles(example):
    """The shipped example profiles of the node, changed only where a veth needs it: software
    timestamps (`-S`), servo `linreg` (the only one that locks on a software testbed), offset
    thresholds of +-5000 ns (software timestamp noise), no phc2sys (there is no PHC)."""
    profiles = json.loads(example)
    for p in profiles:
        p["ptp4lOpts"] = p["ptp4lOpts"] + " -S"
        p["ptp4lConf"] = p.get("ptp4lConf", "[global]\n").replace(
            "[global]\n", "[global]\nclock_servo linreg\n", 1)
        p.pop("phc2sysOpts", None)
        p.setdefault("ptpClockThreshold", {}).update(
            {"maxOffsetThreshold": 5000, "minOffsetThreshold": -5000})
    return profiles


def log(msg):
    print(f"run-pods: {msg}", flush=True)


class Failed(Exception):
    pass


def sh(*cmd, check=True, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise Failed(f"{' '.join(map(str, cmd))}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def render(rel):
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(K8S / rel)]
    else:
        cmd = ["kubectl", "kustomize", str(K8S / rel)]
    return [d for d in yaml.safe_load_all(sh(*cmd).stdout) if d]


def quantity_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(q))
    if not m:
        raise Failed(f"memory quantity {q!r} not understood")
    return int(m.group(1)) * {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[m.group(2)]


def hybrid_cgroups():
    """cgroup v1 with a v2 hierarchy that has controllers: crun refuses to run there."""
    unified = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    return unified.exists() and unified.read_text().strip() != ""


class Pod:
    """One pod of a rendered workload, its volumes on disk and its containers under podman."""

    def __init__(self, run, workload, name, netns, pod_ip, hosts):
        self.run, self.name, self.netns, self.pod_ip, self.hosts = run, name, netns, pod_ip, hosts
        self.spec = workload["spec"]["template"]["spec"]
        if self.spec.get("hostNetwork", False) != (netns == run.node_ns):
            raise Failed(f"{name}: hostNetwork is {self.spec.get('hostNetwork', False)}, but the "
                         f"pod was placed in {netns}")
        self.dir = run.scratch / name
        self.volumes = {}
        kinds = {}
        for v in self.spec.get("volumes", []):
            if "configMap" in v:
                d = self.dir / "configmaps" / v["name"]
                d.mkdir(parents=True)
                for key, text in run.configmaps[v["configMap"]["name"]].items():
                    (d / key).write_text(text)
                self.volumes[v["name"]] = (d, True)
                kinds[v["name"]] = "configMap"
            elif "emptyDir" in v:
                d = self.dir / "emptydir" / v["name"]
                d.mkdir(parents=True)
                os.chmod(d, 0o777)  # as the kubelet makes an emptyDir
                self.volumes[v["name"]] = (d, False)
                kinds[v["name"]] = "emptyDir"
            elif "hostPath" in v:
                d = run.host_root / v["hostPath"]["path"].lstrip("/")
                if v["hostPath"].get("type") == "DirectoryOrCreate":
                    d.mkdir(parents=True, exist_ok=True)
                self.volumes[v["name"]] = (d, False)
            else:
                raise Failed(f"volume {v['name']}: kind not emulated")
        fs_group = self.spec.get("securityContext", {}).get("fsGroup")
        if fs_group is not None:
            # The kubelet gives emptyDir and configMap volumes (not hostPath) to the fsGroup,
            # with the setgid bit.
            for name, kind in kinds.items():
                d = self.volumes[name][0]
                os.chown(d, 0, fs_group)
                os.chmod(d, 0o2777 if kind == "emptyDir" else 0o2755)

    def cname(self, c):
        """The podman name of container `c` of this pod."""
        return f"{self.name}-{c['name']}"

    def podman_args(self, c):
        pod_sc = self.spec.get("securityContext", {})
        sc = {**{k: pod_sc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot",
                                        "seccompProfile") if k in pod_sc},
              **c.get("securityContext", {})}
        a = ["--name", self.cname(c), "--network", f"ns:/run/netns/{self.netns}",
             "--pull", "never",
             "--ulimit", f"nofile={self.run.nofile}:{self.run.nofile}",
             "--ulimit", "nproc=4096:4096"]
        for host, ip in self.hosts.items():
            a += ["--add-host", f"{host}:{ip}"]
        if sc.get("privileged"):
            a.append("--privileged")
        user = sc.get("runAsUser")
        if user is not None:
            a += ["--user", f"{user}:{sc['runAsGroup']}" if "runAsGroup" in sc else str(user)]
        if "fsGroup" in pod_sc:
            a += ["--group-add", str(pod_sc["fsGroup"])]
        if sc.get("allowPrivilegeEscalation") is False:
            a += ["--security-opt", "no-new-privileges"]
        if sc.get("readOnlyRootFilesystem"):
            a += ["--read-only", "--read-only-tmpfs=false"]
        caps = sc.get("capabilities", {})
        for cap in caps.get("drop", []):
            a += ["--cap-drop", cap]
        for cap in caps.get("add", []):
            a += ["--cap-add", cap]
        seccomp = sc.get("seccompProfile", {}).get("type")
        if seccomp not in ("RuntimeDefault",) and not sc.get("privileged"):
            a += ["--security-opt", "seccomp=unconfined"]
        limit = c.get("resources", {}).get("limits", {}).get("memory")
        if limit:
            a += ["--memory", str(quantity_bytes(limit))]
        for e in c.get("env", []):
            if "value" in e:
                value = e["value"]
            else:
                field = e["valueFrom"]["fieldRef"]["fieldPath"]
                value = {"spec.nodeName": self.run.node, "status.hostIP": self.run.node_ip,
                         "status.podIP": self.pod_ip}.get(field)
                if value is None:
                    raise Failed(f"env {e['name']}: fieldRef {field} not emulated")
            a += ["--env", f"{e['name']}={value}"]
        for m in c.get("volumeMounts", []):
            d, always_ro = self.volumes[m["name"]]
            ro = always_ro or m.get("readOnly", False)
            a += ["--volume", f"{d}:{m['mountPath']}" + (":ro" if ro else "")]
        if "command" in c:
            a += ["--entrypoint", json.dumps(c["command"])]
        if self.run.binary:
            a += ["--volume", f"{self.run.binary}:/usr/local/bin/ptp-events:ro"]
        return a, sc

    def run_container(self, c, detach):
        args, sc = self.podman_args(c)
        if sc.get("runAsNonRoot") and sc.get("runAsUser", 0) == 0:
            raise Failed(f"{c['name']}: runAsNonRoot without a non-zero runAsUser")
        cmd = ["podman", "run", *args]
        cmd += ["--detach"] if detach else ["--rm"]
        cmd += [self.run.image, *c.get("args", [])]
        return sh(*cmd)

    def start(self):
        for c in self.spec.get("initContainers", []):
            self.run_container(c, detach=False)
            log(f"{self.name}: init container {c['name']} exited 0")
        for c in self.spec["containers"]:
            self.run_container(c, detach=True)
            self.run.containers.append(self.cname(c))

    def restart(self, c):
        """SIGKILL of a container, then the same spec started again, as a kubelet restarts a
        dead container (same volumes)."""
        name = self.cname(c)
        sh("podman", "kill", "-s", "KILL", name)
        sh("podman", "rm", "-f", name)
        self.run.containers.remove(name)
        self.run_container(c, detach=True)
        self.run.containers.append(name)

    def container(self, name):
        return next(c for c in self.spec["containers"] if c["name"] == name)

    def probe(self, c, kind="readinessProbe"):
        p = c[kind]["httpGet"]
        url = f"http://{self.pod_ip}:{p['port']}{p['path']}"
        return sh("ip", "netns", "exec", self.netns, "curl", "-fsS", "-m", "2", url,
                  check=False).returncode == 0


class Run:
    def __init__(self, image, keep):
        self.image, self.keep = image, keep
        self.scratch = Path(tempfile.mkdtemp(prefix="ptp-events-pods."))
        os.chmod(self.scratch, 0o755)
        self.host_root = self.scratch / "host"
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        self.prefix = f"pe-pods-{os.getpid()}"
        self.netns = []
        self.containers = []
        self.gm = None
        self.node_ns = None
        self.gm_ns = None
        self.domain = 0
        self.binary = None
        self.configmaps = {}
        self.node, self.node_ip = NODE, NODE_IP  # what spec.nodeName and status.hostIP say

    def ns(self, suffix):
        name = f"{self.prefix}-{suffix}"
        sh("ip", "netns", "add", name)
        self.netns.append(name)
        return name

    def cleanup(self):
        if self.gm:
            self.gm.kill()
            self.gm.wait()
        for c in self.containers:
            if self.keep:
                out = sh("podman", "logs", c, check=False)
                (self.scratch / f"{c}.log").write_text(out.stdout + out.stderr)
            sh("podman", "rm", "-f", "-t", "0", c, check=False)
        for n in self.netns:
            for pid in sh("ip", "netns", "pids", n, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", n, check=False)
        if self.keep:
            log(f"logs and volumes kept in {self.scratch}")
        else:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def start_gm(self):
        conf = self.scratch / "gm.cfg"
        conf.write_text(GM_CONF.format(domain=self.domain))
        self.gm = subprocess.Popen(
            ["ip", "netns", "exec", self.gm_ns, "ptp4l", "-2", "-S", "-i", "vgm", "-f", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_gm(self):
        self.gm.kill()
        self.gm.wait()
        self.gm = None


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.5)
    raise Failed(f"timed out after {timeout} s waiting for {what}")


def container_status(name):
    """The `/proc/<pid>/status` fields of a running container's first process."""
    pid = sh("podman", "inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return fields


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="localhost/ptp-events:0.1.0")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--binary", help="a ptp-events binary to mount over the image's (to try a "
                    "change without rebuilding the image; the image's own binary is what counts)")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run-pods: needs root (network namespaces, podman)")
    for tool in ("podman", "ip", "curl", "ptp4l"):
        if not shutil.which(tool):
            sys.exit(f"run-pods: {tool} not found")
    if hybrid_cgroups() and not os.environ.get("RUN_PODS_UNSHARED"):
        # A private mount namespace without the v2 hierarchy: crun then sees plain cgroup v1.
        os.execvp("unshare", ["unshare", "-m", "sh", "-c",
                              'umount /sys/fs/cgroup/unified && RUN_PODS_UNSHARED=1 exec "$@"',
                              "sh", sys.executable, *sys.argv])

    daemonset = next(d for d in render("overlays/events") if d["kind"] == "DaemonSet")
    run = Run(opts.image, opts.keep_logs)
    run.binary = opts.binary and str(Path(opts.binary).resolve())
    for rel in ("overlays/events", "consumer"):
        for d in render(rel):
            if d["kind"] == "ConfigMap":
                run.configmaps[d["metadata"]["name"]] = d.get("data", {})
    profiles = software_profiles(run.configmaps["ptp-configmap"][NODE])
    run.configmaps["ptp-configmap"] = {NODE: json.dumps(profiles)}
    m = re.search(r"domainNumber\s+(\d+)", profiles[0].get("ptp4lConf", ""))
    run.domain = int(m.group(1)) if m else 0
    log(f"node profile: {json.dumps(profiles)}")
    consumer_dep = next(d for d in render("consumer") if d["kind"] == "Deployment")
    started = time.monotonic()
    try:
        check(run, daemonset, consumer_dep)
    except Failed as e:
        log(f"FAILED: {e}")
        if run.node_ns:
            m = sh("ip", "netns", "exec", run.node_ns, "curl", "-fsS", "-m", "2",
                   f"http://{NODE_IP}:9091/metrics", check=False).stdout
            print("--- producer metrics (openshift_ptp_*)", file=sys.stderr)
            print("\n".join(x for x in m.splitlines() if x.startswith("openshift_ptp")),
                  file=sys.stderr)
        print(f"--- grandmaster ptp4l: {'running' if run.gm and run.gm.poll() is None else 'not running'}",
              file=sys.stderr)
        for c in run.containers:
            out = sh("podman", "logs", "--tail", "15", c, check=False)
            print(f"--- {c}\n{out.stdout}{out.stderr}", file=sys.stderr)
        run.cleanup()
        sys.exit(1)
    run.cleanup()
    log(f"passed in {time.monotonic() - started:.0f} s")


def check(run, daemonset, consumer_dep):
    version = sh("podman", "run", "--rm", "--pull", "never", "--ulimit",
                 f"nofile={run.nofile}:{run.nofile}", "--ulimit", "nproc=4096:4096", run.image,
                 "--version").stdout.strip()
    log(f"{run.image}: {version}")
    # The node: ens1f0 cabled to the grandmaster; an address on the pod network, where the
    # consumer's pod lives.
    node = run.node_ns = run.ns("node")
    run.gm_ns = run.ns("gm")
    pods = run.ns("consumer")
    sh("ip", "-n", node, "link", "add", "ens1f0", "type", "veth", "peer", "name", "vgm")
    sh("ip", "-n", node, "link", "set", "vgm", "netns", run.gm_ns)
    sh("ip", "-n", node, "link", "add", "cni0", "type", "veth", "peer", "name", "eth0")
    sh("ip", "-n", node, "link", "set", "eth0", "netns", pods)
    for ns, dev, ip in ((node, "cni0", NODE_IP), (pods, "eth0", CONSUMER_IP)):
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", node, "link", "set", "ens1f0", "up")
    sh("ip", "-n", run.gm_ns, "link", "set", "vgm", "up")
    run.start_gm()

    # Cluster DNS: the Services resolve to the pods behind them.
    publisher = f"ptp-event-publisher-service-{NODE}.openshift-ptp.svc.cluster.local"
    consumer_svc = "consumer-events-subscription-service.cloud-events.svc.cluster.local"
    hosts = {publisher: NODE_IP, consumer_svc: CONSUMER_IP}
    ptp = Pod(run, daemonset, "linuxptp-daemon", node, NODE_IP, hosts)
    ptp.start()
    store = run.host_root / "var/lib/ptp-events"
    st = store.stat()
    if (st.st_uid, st.st_mode & 0o7777) != (65532, 0o700):
        raise Failed(f"store after the init container: uid {st.st_uid}, mode {oct(st.st_mode)}")
    log("the init container handed the hostPath store to uid 65532, mode 0700")

    proxy = ptp.container("cloud-event-proxy")
    wait_for("the producer's readiness probe", lambda: ptp.probe(proxy), 30)
    log("the producer's readiness probe passes")
    status = container_status(ptp.cname(proxy))
    uid = status["Uid"].split()[0]
    if (uid, status["CapEff"], status["NoNewPrivs"], status["Seccomp"]) != (
            "65532", "0000000000000000", "1", "2"):
        raise Failed(f"producer process: Uid {status['Uid']}, CapEff {status['CapEff']}, "
                     f"NoNewPrivs {status['NoNewPrivs']}, Seccomp {status['Seccomp']}")
    touch = sh("podman", "exec", ptp.cname(proxy), "sh", "-c",
               "touch /probe-write", check=False)
    if touch.returncode == 0 or "Read-only file system" not in touch.stderr:
        raise Failed(f"the producer's root file system is writable: {touch.stderr.strip()}")
    log("the producer runs as uid 65532 with no capabilities, no_new_privs, a seccomp filter "
        "and a read-only root")

    consumer = Pod(run, consumer_dep, "consumer", pods, CONSUMER_IP, hosts)
    consumer.start()
    consumer_c = consumer.container("cloud-event-consumer")

    def consumer_log():
        out = sh("podman", "logs", consumer.cname(consumer_c), check=False)
        return out.stdout + out.stderr

    def subscriptions():
        out = sh("ip", "netns", "exec", node, "curl", "-fsS", "-m", "2",
                 f"http://{NODE_IP}:9043{API}/subscriptions", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    wait_for("the consumer's subscriptions",
             lambda: "all subscriptions created successfully" in consumer_log(), 30)
    subs = [s for s in subscriptions() or [] if consumer_svc in s["EndpointUri"]]
    if not subs:
        raise Failed("the consumer says it subscribed, the producer lists none of its")
    log(f"the consumer subscribed through the publisher Service: {len(subs)} subscriptions")

    seen = {}

    def heard(state, after=0):
        """The consumer logged a lock-state event with `state` for the node's ens1f0, at or
        after line `after`."""
        lines = consumer_log().splitlines()
        for i, line in enumerate(lines[after:], after):
            if ("received event" in line and "ptp-status/lock-state" in line
                    and f'"{state}"' in line
                    and f'"/cluster/node/{NODE}/{PORT}/master"' in line):
                seen[state] = i + 1
                return True
        return False

    t0 = time.monotonic()
    wait_for("LOCKED at the consumer", lambda: heard("LOCKED"), 90)
    log(f"the consumer heard LOCKED ({time.monotonic() - t0:.1f} s after it subscribed)")
    run.stop_gm()
    t0 = time.monotonic()
    wait_for("HOLDOVER at the consumer", lambda: heard("HOLDOVER", seen["LOCKED"]), 30)
    t1 = time.monotonic()
    wait_for("FREERUN at the consumer", lambda: heard("FREERUN", seen["HOLDOVER"]), 30)
    log(f"grandmaster stopped: the consumer heard HOLDOVER after {t1 - t0:.1f} s, FREERUN "
        f"{time.monotonic() - t1:.1f} s later")

    # The kubelet restarts a dead container with the same spec and volumes.
    before = sorted(s["SubscriptionId"] for s in subscriptions() or [])
    ptp.restart(proxy)
    wait_for("the restarted producer's readiness probe", lambda: ptp.probe(proxy), 30)
    after = sorted(s["SubscriptionId"] for s in subscriptions() or [])
    if after != before:
        raise Failed(f"subscriptions changed across the restart: {before} -> {after}")
    log(f"producer killed and started again: its {len(after)} subscriptions survived (hostPath "
        "store)")

    def current_lock_state():
        out = sh("ip", "netns", "exec", node, "curl", "-fsS", "-m", "2",
                 f"http://{NODE_IP}:9043{API}{LOCK_STATE}/CurrentState", check=False)
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)["data"]["values"][0]["value"]

    # The grandmaster is still away: the new producer must say FREERUN, never LOCKED.
    state = wait_for("the restarted producer's lock state", current_lock_state, 30)
    time.sleep(2)
    if state != "FREERUN" or heard("LOCKED", seen["FREERUN"]):
        raise Failed(f"after the restart, with no grandmaster: CurrentState {state}, "
                     f"LOCKED published: {heard('LOCKED', seen['FREERUN'])}")
    log("with the grandmaster still away, the restarted producer says FREERUN (CurrentState), "
        "and published no LOCKED")
    mark = len(consumer_log().splitlines())
    run.start_gm()
    t0 = time.monotonic()
    wait_for("LOCKED at the consumer after the restart", lambda: heard("LOCKED", mark), 90)
    log(f"grandmaster back: the consumer heard LOCKED {time.monotonic() - t0:.1f} s later, "
        "without subscribing again")
    if sorted(s["SubscriptionId"] for s in subscriptions() or []) != after:
        raise Failed("the consumer's subscriptions changed after the producer's restart")

    # The daemon container dies: its ptp4l dies with it (the container's PID namespace); the
    # kubelet starts it again, it starts one ptp4l, and the clock locks again.
    def node_ptp4l():
        pids = sh("ip", "netns", "pids", node, check=False).stdout.split()
        return [p for p in pids
                if Path(f"/proc/{p}/comm").exists()
                and Path(f"/proc/{p}/comm").read_text().strip() == "ptp4l"]

    mark = len(consumer_log().splitlines())
    old_ptp4l = node_ptp4l()
    t0 = time.monotonic()
    ptp.restart(ptp.container("linuxptp-daemon-container"))
    wait_for("LOCKED at the consumer after the daemon's restart", lambda: heard("LOCKED", mark), 90)
    running = node_ptp4l()
    if len(running) != 1 or set(running) & set(old_ptp4l):
        raise Failed(f"ptp4l on the node after the daemon's restart: {running} (before: "
                     f"{old_ptp4l})")
    log(f"daemon killed and started again: one new ptp4l (the old one died with its container), "
        f"LOCKED again {time.monotonic() - t0:.1f} s after the kill")

    for name, c in ((ptp.cname(proxy), proxy), (consumer.cname(consumer_c), consumer_c)):
        cid = sh("podman", "inspect", "-f", "{{.Id}}", name).stdout.strip()
        peak = memory_peak(cid)
        limit = quantity_bytes(c["resources"]["limits"]["memory"])
        if peak is None:
            log(f"{name}: memory peak not readable (no cgroup v1 memory accounting)")
            continue
        if peak >= limit:
            raise Failed(f"{name}: memory peak {peak} >= limit {limit}")
        log(f"{name}: memory peak of its cgroup {peak / 2**20:.1f} MiB (limit "
            f"{limit / 2**20:.0f} MiB)")


def memory_peak(cid):
    for base in (Path("/sys/fs/cgroup/memory/libpod_parent") / f"libpod-{cid}",
                 Path("/sys/fs/cgroup/memory/machine.slice") / f"libpod-{cid}.scope"):
        f = base / "memory.max_usage_in_bytes"
        if f.exists():
            return int(f.read_text())
    return None


if __name__ == "__main__":
    main()
