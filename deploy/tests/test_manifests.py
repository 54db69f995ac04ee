"""Contract and schema tests of deploy/: every kustomize rendering, the per-node Services script,
and the Containerfile.

Run: python3 -m unittest discover -s deploy/tests -v   (pytest runs it too)

Needs `kustomize` or `kubectl` (for `kubectl kustomize`) and the Python package
`kubernetes-validate` (which brings PyYAML). Missing tools skip the tests with a message, except
when the environment variable CI is set: then they fail.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent
K8S = DEPLOY / "kubernetes"
ROOT = DEPLOY.parent
RENDERINGS = ["overlays/events", "overlays/no-events", "overlays/events-monitoring",
              "overlays/events-tokenreview", "overlays/events-delivery-tls",
              "overlays/events-delivery-mtls", "consumer", "consumer-tokenreview", "consumer-tls",
              "consumer-mtls"]
HEALTH = "/api/ocloudNotifications/v2/health"
KUBE_VERSION = "1.33.0"  # oldest minor we claim; the newest bundled one is checked too

try:
    import yaml  # noqa: F401  (PyYAML, a dependency of kubernetes-validate)
    import kubernetes_validate
    MISSING = None
except ImportError as e:  # pragma: no cover
    MISSING = f"python package missing ({e}); pip install kubernetes-validate==1.37.0"


def kustomize_cmd():
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def require(what_missing):
    """Skip locally, fail in CI."""
    if what_missing:
        msg = f"deploy tests: {what_missing}"
        if os.environ.get("CI"):
            raise AssertionError(msg + " (CI is set: this must be installed; see .ci/run)")
        print(f"SKIPPED: {msg}")
        raise unittest.SkipTest(msg)


_cache = {}


def render(rel):
    require(MISSING)
    cmd = kustomize_cmd()
    require(None if cmd else "neither kustomize nor kubectl found (apt-get install kubectl)")
    if rel not in _cache:
        out = subprocess.run(cmd + [str(K8S / rel)], capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} {rel} failed:\n{out.stderr}")
        _cache[rel] = (out.stdout, [d for d in yaml.safe_load_all(out.stdout) if d])
    return _cache[rel]


def find(docs, kind, name=None):
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if not hits:
        raise AssertionError(f"no {kind} {name or ''} in the rendering")
    return hits[0]


def container(pod_spec, name):
    for c in pod_spec["containers"]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name}; have {[c['name'] for c in pod_spec['containers']]}")


def mounts(c):
    return {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}


def env(c):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def validate_docs(testcase, docs, label):
    for version in (KUBE_VERSION, kubernetes_validate.latest_version()):
        for d in docs:
            try:
                kubernetes_validate.validate(d, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                # CRDs (ServiceMonitor): checked by their own test below.
                testcase.assertIn(d["apiVersion"].split("/")[0], {"monitoring.coreos.com"}, label)
            except kubernetes_validate.ValidationError as e:
                raise AssertionError(f"{label}: {d['kind']}/{d['metadata']['name']} "
                                     f"invalid for Kubernetes {version}: {e.message} at {list(e.path)}")


class Schemas(unittest.TestCase):
    def test_every_rendering_validates_against_kubernetes_schemas(self):
        for rel in RENDERINGS:
            with self.subTest(rendering=rel):
                _, docs = render(rel)
                self.assertTrue(docs)
                validate_docs(self, docs, rel)

    def test_per_node_services_script_output_validates(self):
        require(MISSING)
        out = subprocess.run(
            ["bash", str(K8S / "per-node-services.sh"), "worker-0=10.0.0.10",
             "compute-1.example.com=fd00::11"], capture_output=True, text=True, check=True).stdout
        docs = [d for d in yaml.safe_load_all(out) if d]
        validate_docs(self, docs, "per-node-services.sh")
        svcs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
        self.assertEqual(set(svcs), {"ptp-event-publisher-service-worker-0",
                                     "ptp-event-publisher-service-compute-1"})
        for s in svcs.values():
            self.assertNotIn("selector", s["spec"])
            self.assertEqual(s["metadata"]["namespace"], "openshift-ptp")
            self.assertEqual(s["spec"]["ports"][0]["port"], 9043)
        slices = {d["metadata"]["labels"]["kubernetes.io/service-name"]: d
                  for d in docs if d["kind"] == "EndpointSlice"}
        self.assertEqual(slices["ptp-event-publisher-service-worker-0"]["endpoints"][0],
                         {"addresses": ["10.0.0.10"], "nodeName": "worker-0",
                          "conditions": {"ready": True}})
        self.assertEqual(slices["ptp-event-publisher-service-compute-1"]["addressType"], "IPv6")
        bad = subprocess.run(["bash", str(K8S / "per-node-services.sh"), "Bad_Node=1.2.3.4"],
                             capture_output=True, text=True)
        self.assertNotEqual(bad.returncode, 0)


class EventsOverlay(unittest.TestCase):
    def setUp(self):
        _, self.docs = render("overlays/events")
        self.ds = find(self.docs, "DaemonSet", "linuxptp-daemon")
        self.pod = self.ds["spec"]["template"]["spec"]
        self.daemon = container(self.pod, "linuxptp-daemon-container")
        self.proxy = container(self.pod, "cloud-event-proxy")
        self.volumes = {v["name"]: v for v in self.pod["volumes"]}

    def test_producer_asks_the_daemons_api_where_the_daemon_serves_it(self):
        ds = find(self.docs, "DaemonSet")
        spec = ds["spec"]["template"]["spec"]
        daemon = env(container(spec, "linuxptp-daemon-container"))
        producer = env(container(spec, "cloud-event-proxy"))
        self.assertEqual(producer.get("DAEMON_API"), "http://" + daemon["DAEMON_HTTP_ADDR"])

    def test_producer_ports_9043_and_9091(self):
        ports = {p["containerPort"]: p["name"] for p in self.proxy["ports"]}
        self.assertEqual(ports, {9043: "api", 9091: "metrics"})
        self.assertIn("--api-port=9043", self.proxy["args"])
        self.assertIn("--metrics-addr=:9091", self.proxy["args"])

    def test_socket_volume_shared_at_cloud_native(self):
        d, p = mounts(self.daemon), mounts(self.proxy)
        self.assertEqual(d["/cloud-native"], p["/cloud-native"])
        self.assertIn("emptyDir", self.volumes[d["/cloud-native"]])
        self.assertEqual(env(self.daemon)["EVENT_SOCKET"], "/cloud-native/events.sock")
        self.assertEqual(env(self.proxy)["EVENT_SOCKET"], "/cloud-native/events.sock")

    def test_var_run_shared_and_profiles_mounted(self):
        d, p = mounts(self.daemon), mounts(self.proxy)
        self.assertEqual(d["/var/run"], p["/var/run"])
        self.assertEqual(d["/etc/linuxptp"], "config-volume")
        self.assertEqual(self.volumes["config-volume"]["configMap"]["name"], "ptp-configmap")
        self.assertEqual(env(self.daemon)["PTP_PROFILE_PATH"], "/etc/linuxptp")
        self.assertEqual(env(self.daemon)["NODE_NAME"], {"fieldRef": {"fieldPath": "spec.nodeName"}})

    def test_probes_on_the_health_endpoint(self):
        for kind in ("readinessProbe", "livenessProbe"):
            self.assertEqual(self.proxy[kind]["httpGet"], {"path": HEALTH, "port": 9043}, kind)

    def test_store_on_a_node_local_hostpath(self):
        store = mounts(self.proxy)["/var/lib/ptp-events"]
        self.assertEqual(self.volumes[store]["hostPath"]["path"], "/var/lib/ptp-events")
        self.assertIn("--store-path=/var/lib/ptp-events", self.proxy["args"])

    def test_host_network_and_cluster_dns(self):
        self.assertTrue(self.pod["hostNetwork"])
        self.assertEqual(self.pod["dnsPolicy"], "ClusterFirstWithHostNet")
        self.assertEqual(self.ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"], 0)

    def test_producer_non_root_and_smaller_than_the_go_sidecar(self):
        sc = self.proxy["securityContext"]
        self.assertTrue(sc["runAsNonRoot"])
        self.assertNotEqual(sc["runAsUser"], 0)
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        req = self.proxy["resources"]["requests"]
        self.assertLess(int(req["cpu"].rstrip("m")), 10)
        self.assertLess(int(req["memory"].rstrip("Mi")), 20)
        self.assertTrue(self.daemon["securityContext"]["privileged"])

    def test_operator_config_enables_events(self):
        self.assertIn("--operator-config=/etc/ptp-operator/ptpoperatorconfig.yaml", self.daemon["args"])
        self.assertEqual(mounts(self.daemon)["/etc/ptp-operator"], "operator-config")
        cm_name = self.volumes["operator-config"]["configMap"]["name"]
        cm = find(self.docs, "ConfigMap", cm_name)
        cfg = yaml.safe_load(cm["data"]["ptpoperatorconfig.yaml"])
        self.assertEqual(cfg["kind"], "PtpOperatorConfig")
        self.assertIs(cfg["spec"]["ptpEventConfig"]["enableEventPublisher"], True)

    def test_services(self):
        pub = find(self.docs, "Service", "ptp-event-publisher-service")
        self.assertEqual(pub["spec"]["internalTrafficPolicy"], "Local")
        self.assertEqual(pub["spec"]["ports"][0]["port"], 9043)
        met = find(self.docs, "Service", "ptp-monitor-service")
        self.assertEqual(met["spec"]["ports"], [{"name": "metrics", "port": 9091,
                                                 "targetPort": 9091, "protocol": "TCP"}])
        labels = self.pod and self.ds["spec"]["template"]["metadata"]["labels"]
        for s in (pub, met):
            for k, v in s["spec"]["selector"].items():
                self.assertEqual(labels.get(k), v, s["metadata"]["name"])

    def test_daemon_http_on_loopback_and_not_a_readiness_gate(self):
        e = env(self.daemon)
        self.assertEqual(e["DAEMON_HTTP_ADDR"], "127.0.0.1:8081")
        self.assertNotIn("readinessProbe", self.daemon)

    def test_no_kubernetes_api_access(self):
        for d in self.docs:
            self.assertNotIn(d["kind"], {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
        self.assertIs(self.pod["automountServiceAccountToken"], False)
        self.assertIs(find(self.docs, "ServiceAccount", "linuxptp-daemon")["automountServiceAccountToken"], False)


class NoEventsOverlay(unittest.TestCase):
    def test_daemon_alone_with_publisher_off(self):
        _, docs = render("overlays/no-events")
        ds = find(docs, "DaemonSet", "linuxptp-daemon")
        pod = ds["spec"]["template"]["spec"]
        self.assertEqual([c["name"] for c in pod["containers"]], ["linuxptp-daemon-container"])
        self.assertNotIn("initContainers", pod)
        vols = {v["name"]: v for v in pod["volumes"]}
        cm = find(docs, "ConfigMap", vols["operator-config"]["configMap"]["name"])
        cfg = yaml.safe_load(cm["data"]["ptpoperatorconfig.yaml"])
        self.assertIs(cfg["spec"]["ptpEventConfig"]["enableEventPublisher"], False)
        self.assertFalse([d for d in docs if d["kind"] == "Service"])


class ExampleProfiles(unittest.TestCase):
    def test_every_example_profile_passes_the_daemons_check_without_warnings(self):
        """Each node's profiles in each rendering's ptp-configmap, as `ptp-events daemon --check`
        reads them: valid, and without a warning (e.g. a ptp4l that would print only summary
        lines, from which no lock state is decided)."""
        checked = 0
        with tempfile.TemporaryDirectory() as d:
            for rel in RENDERINGS:
                _, docs = render(rel)
                for cm in [x for x in docs if x["kind"] == "ConfigMap"
                           and x["metadata"]["name"] == "ptp-configmap"]:
                    for node, text in cm.get("data", {}).items():
                        Path(d, node).write_text(text)
                        out = subprocess.run(
                            [binary(), "daemon", "--check", "--node-name", node,
                             "--profile-dir", d], capture_output=True, text=True)
                        self.assertEqual(out.returncode, 0, f"{rel} {node}: {out.stderr}")
                        self.assertIn(" 0 warning(s)", out.stdout, f"{rel} {node}: {out.stdout}")
                        checked += 1
        self.assertGreater(checked, 0, "no example profile found")


class Monitoring(unittest.TestCase):
    def test_servicemonitor_scrapes_the_metrics_port(self):
        _, docs = render("overlays/events-monitoring")
        sm = find(docs, "ServiceMonitor", "ptp-events")
        self.assertEqual(sm["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(sm["metadata"]["namespace"], "openshift-ptp")
        svc = find(docs, "Service", "ptp-monitor-service")
        for k, v in sm["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(svc["metadata"]["labels"].get(k), v)
        self.assertEqual(sm["spec"]["endpoints"][0]["port"], "metrics")
        self.assertEqual(sm["spec"]["endpoints"][0]["path"], "/metrics")


class Consumer(unittest.TestCase):
    def test_documented_consumer(self):
        _, docs = render("consumer")
        self.assertEqual(find(docs, "Namespace", "cloud-events")["metadata"]["name"], "cloud-events")
        sa = find(docs, "ServiceAccount", "consumer-sa")
        self.assertIs(sa["automountServiceAccountToken"], False)
        dep = find(docs, "Deployment", "cloud-consumer-deployment")
        self.assertEqual(dep["metadata"]["namespace"], "cloud-events")
        pod = dep["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], "consumer-sa")
        c = pod["containers"][0]
        self.assertEqual(c["args"], [
            "consumer",
            "--local-api-addr=consumer-events-subscription-service.cloud-events.svc.cluster.local:9043",
            "--http-event-publishers=ptp-event-publisher-service-NODE_NAME.openshift-ptp.svc.cluster.local:9043",
        ])
        e = env(c)
        self.assertEqual(e["NODE_NAME"], {"fieldRef": {"fieldPath": "spec.nodeName"}})
        self.assertEqual(e["CONSUMER_TYPE"], "PTP")
        self.assertEqual(e["ENABLE_STATUS_CHECK"], "true")
        self.assertEqual(c["ports"][0]["containerPort"], 9043)
        svc = find(docs, "Service", "consumer-events-subscription-service")
        self.assertEqual(svc["metadata"]["namespace"], "cloud-events")
        self.assertEqual((svc["spec"]["ports"][0]["port"], svc["spec"]["ports"][0]["targetPort"]), (9043, 9043))
        for k, v in svc["spec"]["selector"].items():
            self.assertEqual(dep["spec"]["template"]["metadata"]["labels"].get(k), v)
        for d in docs:
            self.assertNotIn(d["kind"], {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def binary():
    """The ptp-events binary built by the test run (cargo test builds target/debug/ptp-events)."""
    for p in (os.environ.get("PTP_EVENTS_BIN"), ROOT / "target/debug/ptp-events",
              ROOT / "target/release/ptp-events"):
        if p and Path(p).is_file():
            return str(p)
    require("no ptp-events binary (run cargo build -p ptp-events first)")


class TokenReview(unittest.TestCase):
    def setUp(self):
        _, self.docs = render("overlays/events-tokenreview")
        self.ds = find(self.docs, "DaemonSet", "linuxptp-daemon")
        self.pod = self.ds["spec"]["template"]["spec"]
        self.proxy = container(self.pod, "cloud-event-proxy")
        self.daemon = container(self.pod, "linuxptp-daemon-container")
        self.volumes = {v["name"]: v for v in self.pod["volumes"]}
        _, self.consumer_docs = render("consumer-tokenreview")

    def test_only_the_producer_may_review_tokens(self):
        crb = find(self.docs, "ClusterRoleBinding", "ptp-events-tokenreview")
        self.assertEqual(crb["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                          "kind": "ClusterRole", "name": "system:auth-delegator"})
        self.assertEqual(crb["subjects"], [{"kind": "ServiceAccount", "name": "linuxptp-daemon",
                                            "namespace": self.ds["metadata"]["namespace"]}])
        self.assertEqual(self.pod["serviceAccountName"], "linuxptp-daemon")
        roles = [d for d in self.docs if d["kind"] in {"Role", "ClusterRole", "RoleBinding"}]
        self.assertEqual(roles, [])
        # No token in the pod by default, none in the daemon container: only the producer's.
        self.assertIs(self.pod["automountServiceAccountToken"], False)
        self.assertNotIn("producer-kube-api-access", mounts(self.daemon).values())

    def test_producer_token_and_ca_come_from_its_projected_volume(self):
        e = env(self.proxy)
        self.assertEqual(e["AUTH_TOKEN_REVIEW"], "true")
        m = {name: path for path, name in mounts(self.proxy).items()}
        base = m["producer-kube-api-access"]
        sources = self.volumes["producer-kube-api-access"]["projected"]["sources"]
        token = [s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s][0]
        self.assertNotIn("audience", token, "the producer's own token is for the API server")
        ca = [s["configMap"] for s in sources if "configMap" in s][0]
        self.assertEqual(ca["name"], "kube-root-ca.crt")
        self.assertEqual(e["KUBE_TOKEN_FILE"], f"{base}/{token['path']}")
        self.assertEqual(e["KUBE_CA_FILE"], f"{base}/{ca['items'][0]['path']}")
        self.assertFalse(base.startswith("/var/run"), "the producer mounts the host's /var/run")

    def test_consumer_presents_a_token_the_producer_admits(self):
        e = env(self.proxy)
        dep = find(self.consumer_docs, "Deployment", "cloud-consumer-deployment")
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        vols = {v["name"]: v for v in pod["volumes"]}
        token_file = env(c)["PUBLISHER_TOKEN_FILE"]
        mount = [(p, n) for p, n in mounts(c).items() if token_file.startswith(p + "/")]
        self.assertEqual(len(mount), 1, token_file)
        path, name = mount[0]
        src = vols[name]["projected"]["sources"][0]["serviceAccountToken"]
        self.assertEqual(f"{path}/{src['path']}", token_file)
        self.assertEqual(src["audience"], e["AUTH_AUDIENCE"])
        ns = dep["metadata"]["namespace"]
        self.assertIn(f"system:serviceaccounts:{ns}", e["AUTH_ALLOW_GROUP"].split(","))
        self.assertIs(pod["automountServiceAccountToken"], False)

    def test_the_binary_takes_the_rendered_environment(self):
        """The producer started with the rendered TokenReview environment (files moved to a
        temporary directory, an API server address where nothing listens): health answers
        without a token, the API refuses a request without one (401) and, since the API server
        cannot be reached, fails closed on one with a token (503)."""
        import http.client
        import tempfile
        import time
        exe = binary()
        with tempfile.TemporaryDirectory() as d:
            Path(d, "token").write_text("producer-token\n")
            # Any certificate will do: the connection is refused before TLS.
            Path(d, "ca.crt").write_text(FAKE_CA)
            api_port, dead_port = free_ports(2)
            e = {k: v for k, v in env(self.proxy).items() if isinstance(v, str)}
            e.update(KUBE_TOKEN_FILE=f"{d}/token", KUBE_CA_FILE=f"{d}/ca.crt",
                     KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(dead_port),
                     NODE_NAME="node1", EVENT_SOCKET="off", PTP_RUN_DIR=d, PTP_PROFILE_PATH=d,
                     STORE_PATH=f"{d}/store", PATH=os.environ.get("PATH", "/usr/bin:/bin"))
            args = [exe, "proxy", f"--api-port={api_port}", "--metrics-addr=off",
                    "--api-bind=127.0.0.1"]
            proc = subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                def get(path, token=None):
                    deadline = time.time() + 20
                    while True:
                        try:
                            c = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
                            h = {"Authorization": f"Bearer {token}"} if token else {}
                            c.request("GET", "/api/ocloudNotifications/v2" + path, headers=h)
                            r = c.getresponse()
                            out = r.status, r.headers, r.read()
                            c.close()
                            return out
                        except ConnectionRefusedError:
                            if time.time() > deadline or proc.poll() is not None:
                                out = proc.stdout.read().decode() if proc.poll() is not None else ""
                                raise AssertionError(f"producer did not start: {out}")
                            time.sleep(0.1)
                self.assertEqual(get("/health")[0], 200)
                self.assertEqual(get("/subscriptions")[0], 401)
                status, headers, body = get("/subscriptions", "consumer-token")
                self.assertEqual(status, 503, body)
                self.assertEqual(headers.get("Retry-After"), "1")
            finally:
                proc.terminate()
                proc.wait(timeout=10)
                proc.stdout.close()


def free_ports(n):
    import socket
    ports, socks = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
        socks.append(s)
    for s in socks:
        s.close()
    return ports


class DeliveryTls(unittest.TestCase):
    def setUp(self):
        _, self.docs = render("overlays/events-delivery-tls")
        pod = find(self.docs, "DaemonSet", "linuxptp-daemon")["spec"]["template"]["spec"]
        self.proxy = container(pod, "cloud-event-proxy")
        self.daemon = container(pod, "linuxptp-daemon-container")
        self.volumes = {v["name"]: v for v in pod["volumes"]}
        _, self.consumer_docs = render("consumer-tls")

    def test_producer_trusts_the_consumer_ca_configmap(self):
        ca_file = env(self.proxy)["DELIVERY_CA_FILE"]
        mount = [(p, n) for p, n in mounts(self.proxy).items() if ca_file.startswith(p + "/")]
        self.assertEqual(len(mount), 1, ca_file)
        path, name = mount[0]
        cm = self.volumes[name]["configMap"]
        self.assertEqual(cm["name"], "ptp-events-consumer-ca")
        self.assertEqual(f"{path}/{cm['items'][0]['path']}", ca_file)
        self.assertEqual(cm["items"][0]["key"], "ca.crt")
        self.assertNotIn(name, mounts(self.daemon).values())
        self.assertFalse(path.startswith("/var/run"), "the producer mounts the host's /var/run")

    def test_consumer_serves_tls_from_its_secret_readable_by_its_group_only(self):
        dep = find(self.consumer_docs, "Deployment", "cloud-consumer-deployment")
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        e = env(c)
        vols = {v["name"]: v for v in pod["volumes"]}
        for var, key in (("LOCAL_TLS_CERT", "tls.crt"), ("LOCAL_TLS_KEY", "tls.key")):
            path, name = [(p, n) for p, n in mounts(c).items() if e[var].startswith(p + "/")][0]
            self.assertEqual(e[var], f"{path}/{key}")
            self.assertEqual(vols[name]["secret"]["secretName"], "consumer-tls")
            self.assertEqual(vols[name]["secret"]["defaultMode"], 0o440)
        self.assertEqual(pod["securityContext"]["fsGroup"], c["securityContext"]["runAsGroup"])
        # Still the documented consumer otherwise: its Service name is the certificate's name.
        self.assertIn("--local-api-addr=consumer-events-subscription-service.cloud-events.svc"
                      ".cluster.local:9043", c["args"])

    def test_the_binary_takes_the_rendered_environment(self):
        """The producer started with the rendered environment (the CA moved to a temporary
        directory) accepts https EndpointUris: one to a port where nothing listens fails its
        initial notification (400, connection failed), not for want of --delivery-ca-file."""
        import http.client
        import json
        import tempfile
        import time
        exe = binary()
        with tempfile.TemporaryDirectory() as d:
            Path(d, "ca.crt").write_text(FAKE_CA)
            api_port, dead_port = free_ports(2)
            e = {k: v for k, v in env(self.proxy).items() if isinstance(v, str)}
            e.update(DELIVERY_CA_FILE=f"{d}/ca.crt", NODE_NAME="node1", EVENT_SOCKET="off",
                     PTP_RUN_DIR=d, PTP_PROFILE_PATH=d, STORE_PATH=f"{d}/store",
                     PATH=os.environ.get("PATH", "/usr/bin:/bin"))
            args = [exe, "proxy", f"--api-port={api_port}", "--metrics-addr=off",
                    "--api-bind=127.0.0.1"]
            proc = subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                body = json.dumps({
                    "ResourceAddress": "/cluster/node/node1/sync/ptp-status/lock-state",
                    "EndpointUri": f"https://127.0.0.1:{dead_port}/event"})
                deadline = time.time() + 20
                while True:
                    try:
                        c = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
                        c.request("POST", "/api/ocloudNotifications/v2/subscriptions", body=body,
                                  headers={"Content-Type": "application/json"})
                        r = c.getresponse()
                        status, detail = r.status, json.loads(r.read())["detail"]
                        c.close()
                        break
                    except ConnectionRefusedError:
                        if time.time() > deadline or proc.poll() is not None:
                            out = proc.stdout.read().decode() if proc.poll() is not None else ""
                            raise AssertionError(f"producer did not start: {out}")
                        time.sleep(0.1)
                self.assertEqual(status, 400, detail)
                self.assertIn("connection failed", detail)
                self.assertNotIn("--delivery-ca-file", detail)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
                proc.stdout.close()


def openssl_pki(d, ca_name, leaves):
    """A CA and leaf certificates it issued (for 127.0.0.1, server and client use), made with
    the openssl command in directory d: the CA's path and {leaf: (certificate, key)} paths."""
    require(None if shutil.which("openssl") else "no openssl command (apt-get install openssl)")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", f"{ca_name}.key", "-out", f"{ca_name}.crt", "-days", "2",
        "-subj", f"/CN={ca_name}")
    Path(d, "leaf.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                   "extendedKeyUsage=serverAuth,clientAuth\n")
    out = {}
    for leaf in leaves:
        run("req", "-new", *ec, "-keyout", f"{leaf}.key", "-out", f"{leaf}.csr", "-subj",
            f"/CN={leaf}")
        run("x509", "-req", "-in", f"{leaf}.csr", "-CA", f"{ca_name}.crt", "-CAkey",
            f"{ca_name}.key", "-CAcreateserial", "-days", "2", "-out", f"{leaf}.crt",
            "-extfile", "leaf.ext")
        out[leaf] = (Path(d, f"{leaf}.crt"), Path(d, f"{leaf}.key"))
    return Path(d, f"{ca_name}.crt"), out


class DeliveryMtls(unittest.TestCase):
    def setUp(self):
        _, self.docs = render("overlays/events-delivery-mtls")
        pod = find(self.docs, "DaemonSet", "linuxptp-daemon")["spec"]["template"]["spec"]
        self.proxy = container(pod, "cloud-event-proxy")
        self.daemon = container(pod, "linuxptp-daemon-container")
        self.volumes = {v["name"]: v for v in pod["volumes"]}
        _, consumer_docs = render("consumer-mtls")
        dep = find(consumer_docs, "Deployment", "cloud-consumer-deployment")
        self.consumer_pod = dep["spec"]["template"]["spec"]
        self.consumer = self.consumer_pod["containers"][0]

    def test_producer_client_certificate_from_its_secret_readable_by_its_group_only(self):
        e = env(self.proxy)
        for var, key in (("DELIVERY_CLIENT_CERT", "tls.crt"), ("DELIVERY_CLIENT_KEY", "tls.key")):
            path, name = [(p, n) for p, n in mounts(self.proxy).items()
                          if e[var].startswith(p + "/")][0]
            self.assertEqual(e[var], f"{path}/{key}")
            self.assertEqual(self.volumes[name]["secret"]["secretName"],
                             "ptp-events-delivery-client")
            self.assertEqual(self.volumes[name]["secret"]["defaultMode"], 0o440)
            self.assertNotIn(name, mounts(self.daemon).values())
        # Still delivery over TLS (components/delivery-tls).
        self.assertIn("DELIVERY_CA_FILE", e)

    def test_consumer_takes_the_producer_ca_configmap(self):
        ca_file = env(self.consumer)["LOCAL_TLS_CLIENT_CA"]
        vols = {v["name"]: v for v in self.consumer_pod["volumes"]}
        path, name = [(p, n) for p, n in mounts(self.consumer).items()
                      if ca_file.startswith(p + "/")][0]
        cm = vols[name]["configMap"]
        self.assertEqual(cm["name"], "ptp-events-producer-ca")
        self.assertEqual(f"{path}/{cm['items'][0]['path']}", ca_file)
        self.assertEqual(cm["items"][0]["key"], "ca.crt")
        # Still the TLS consumer.
        self.assertIn("LOCAL_TLS_CERT", env(self.consumer))

    def test_the_binaries_take_the_rendered_environment(self):
        """The producer and the consumer started with their rendered environments (each file
        at its rendered path under a temporary directory; the consumer's and the publisher's
        addresses on loopback): the consumer's five subscriptions are created, which needs
        their initial notifications delivered over mutual TLS; a client without the
        producer's certificate cannot post to the consumer, one with it can."""
        import http.client
        import json
        import ssl
        import tempfile
        import time
        exe = binary()
        with tempfile.TemporaryDirectory() as d:
            consumer_ca, consumer_leaf = openssl_pki(d, "consumer-ca", ["consumer"])
            producer_ca, producer_leaf = openssl_pki(d, "producer-ca", ["producer"])
            files = {
                "DELIVERY_CA_FILE": consumer_ca,
                "DELIVERY_CLIENT_CERT": producer_leaf["producer"][0],
                "DELIVERY_CLIENT_KEY": producer_leaf["producer"][1],
                "LOCAL_TLS_CERT": consumer_leaf["consumer"][0],
                "LOCAL_TLS_KEY": consumer_leaf["consumer"][1],
                "LOCAL_TLS_CLIENT_CA": producer_ca,
            }
            api_port, consumer_port = free_ports(2)
            common = {"NODE_NAME": "node1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

            def environment(c):
                e = {k: v for k, v in env(c).items() if isinstance(v, str)}
                for var in set(e) & set(files):
                    # Each file where the rendering says it is, under d.
                    mirrored = Path(d + e[var])
                    mirrored.parent.mkdir(parents=True, exist_ok=True)
                    mirrored.write_bytes(files[var].read_bytes())
                    e[var] = str(mirrored)
                e.update(common)
                return e
            e = environment(self.proxy)
            e.update(EVENT_SOCKET="off", PTP_RUN_DIR=d, PTP_PROFILE_PATH=d,
                     STORE_PATH=f"{d}/store")
            producer = subprocess.Popen(
                [exe, "proxy", f"--api-port={api_port}", "--metrics-addr=off",
                 "--api-bind=127.0.0.1"],
                env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            args = [a for a in self.consumer["args"] if not a.startswith(
                ("--local-api-addr=", "--http-event-publishers="))]
            consumer = subprocess.Popen(
                [exe, *args, f"--local-api-addr=127.0.0.1:{consumer_port}",
                 f"--http-event-publishers=127.0.0.1:{api_port}"],
                env=environment(self.consumer), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
            try:
                deadline = time.time() + 30
                subs = []
                while len(subs) < 5:
                    if time.time() > deadline or producer.poll() is not None \
                            or consumer.poll() is not None:
                        for p in (producer, consumer):
                            p.terminate()
                        raise AssertionError(
                            f"subscriptions: {subs}\nproducer: {producer.stdout.read().decode()}"
                            f"\nconsumer: {consumer.stdout.read().decode()}")
                    time.sleep(0.2)
                    try:
                        c = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
                        c.request("GET", "/api/ocloudNotifications/v2/subscriptions")
                        subs = json.loads(c.getresponse().read())
                        c.close()
                    except ConnectionRefusedError:
                        pass
                endpoint = f"https://127.0.0.1:{consumer_port}/event"
                self.assertEqual({s["EndpointUri"] for s in subs}, {endpoint})

                def post(identity):
                    ctx = ssl.create_default_context(cafile=str(consumer_ca))
                    if identity:
                        ctx.load_cert_chain(*map(str, identity))
                    c = http.client.HTTPSConnection("127.0.0.1", consumer_port, context=ctx,
                                                    timeout=10)
                    try:
                        c.request("POST", "/event", body=b"")
                        return c.getresponse().status
                    finally:
                        c.close()
                # Without a client certificate, and with one of another CA (the consumer's
                # own): refused in the handshake (TLS 1.3: seen at the first read).
                for identity in (None, consumer_leaf["consumer"]):
                    with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError,
                                            http.client.RemoteDisconnected)):
                        post(identity)
                # With the producer's certificate: the endpoint check's empty body, 204.
                self.assertEqual(post(producer_leaf["producer"]), 204)
            finally:
                for p in (consumer, producer):
                    p.terminate()
                    p.wait(timeout=10)
                    p.stdout.close()


# A self-signed CA certificate, only parsed (never used to verify anything).
FAKE_CA = """-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgIUO9etqRlLM388d1fA7RGGy68wkjgwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHdGVzdC1jYTAgFw0yNjExMjUxODA5NDZaGA8yMTI2MTEwMTE4
MDk0NlowEjEQMA4GA1UEAwwHdGVzdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABNCYEVjpSeXdo1NORfrNl29JwfJgY2p/XUaEkC03+jEScfvN4hNQdW56fRUg
8mb5C+BEoSNNmRivOzjzb/sDYmqjUzBRMB0GA1UdDgQWBBQSyHd4XjIRGWMjfowv
7LI/M/RevDAfBgNVHSMEGDAWgBQSyHd4XjIRGWMjfowv7LI/M/RevDAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCICjKzEsGK29M7XX+8rjGE2w/TaLs
BxZ6SH+VKZ2J82CDAiEAnYJnPKCxx2nz4N1MFIO4O2ujuM29j8PaOarzY6CO3h4=
-----END CERTIFICATE-----
"""


class Containerfile(unittest.TestCase):
    def test_builds_the_binary_the_tests_use(self):
        text = (DEPLOY / "Containerfile").read_text()
        self.assertIn("cargo build --release --locked -p ptp-events", text)
        self.assertNotIn("--features", text)
        self.assertNotIn("--no-default-features", text)
        self.assertIn("COPY --from=build /out/ptp-events /usr/local/bin/ptp-events", text)
        self.assertRegex(text, r"(?m)^USER 65532:65532$")
        self.assertRegex(text, r"(?m)^ENTRYPOINT \[\"/usr/local/bin/ptp-events\"\]$")
        self.assertIn("linuxptp", text)
        self.assertEqual(len(re.findall(r"(?m)^FROM ", text)), 2, "multi-stage: build + final")
        # the image's toolchain is not older than the workspace's rust-version
        want = re.search(r'rust-version = "(\d+)\.(\d+)"', (ROOT / "Cargo.toml").read_text())
        have = re.search(r"ARG RUST_VERSION=(\d+)\.(\d+)", text)
        self.assertGreaterEqual((int(have[1]), int(have[2])), (int(want[1]), int(want[2])))


if __name__ == "__main__":
    unittest.main()
