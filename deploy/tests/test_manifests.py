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
import unittest
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent
K8S = DEPLOY / "kubernetes"
ROOT = DEPLOY.parent
RENDERINGS = ["overlays/events", "overlays/no-events", "overlays/events-monitoring", "consumer"]
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
