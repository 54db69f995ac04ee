"""deploy/monitoring: the alert rules and the Grafana dashboard, checked for real.

* `promtool check rules` and `promtool test rules` (unit tests of every alert);
* the PrometheusRule of the kustomize component is the rules file;
* the dashboard is importable (datasource as a variable, every panel a query);
* a real Prometheus server (Debian's `prometheus`, started here on loopback) scrapes a real
  producer (`ptp-events proxy`) fed the repository's recorded T-BC daemon log, then HOLDOVER,
  FREERUN, process restarts and a dead subscriber: every dashboard query returns series and every
  alert fires (`/api/v1/alerts`), the producer-down alert once the producer is killed.

Run: python3 -m unittest discover -s deploy/tests -v
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from test_manifests import ROOT, binary, find, render, require

MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "ptp-events.rules.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
FIXTURE = ROOT / "crates" / "ptp-state" / "tests" / "data" / "daemon-log-tbc.txt"
JOB = "ptp-monitor-service"


def tool(name):
    path = shutil.which(name)
    require(None if path else f"{name} missing (apt-get install prometheus)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, data=None, method=None):
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
        return r.status, (json.loads(body) if body else None)


def wait(what, pred, limit=30.0):
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except OSError as e:  # not up yet
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out after {limit}s waiting for {what} (last: {last})")


class Rules(unittest.TestCase):
    def test_promtool_checks_the_rules_and_their_unit_tests(self):
        promtool = tool("promtool")
        for args in (["check", "rules", RULES.name], ["test", "rules", "ptp-events.rules.test.yml"]):
            r = subprocess.run([promtool, *args], cwd=MONITORING, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"promtool {' '.join(args)}:\n{r.stdout}{r.stderr}")
            self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_every_alert_has_a_unit_test(self):
        import yaml
        alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
        tests = yaml.safe_load((MONITORING / "ptp-events.rules.test.yml").read_text())["tests"]
        tested = {t["alertname"] for case in tests for t in case["alert_rule_test"]
                  if t.get("exp_alerts")}
        self.assertEqual(alerts - tested, set(), "alerts whose firing no unit test checks")

    def test_the_prometheusrule_is_the_rules_file(self):
        import yaml
        _, docs = render("overlays/events-monitoring")
        pr = find(docs, "PrometheusRule", "ptp-events")
        self.assertEqual(pr["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(pr["metadata"]["namespace"], "openshift-ptp")
        self.assertEqual(pr["spec"]["groups"], yaml.safe_load(RULES.read_text())["groups"])


class Dashboard(unittest.TestCase):
    def test_importable_with_the_datasource_as_a_variable(self):
        d = json.loads(DASHBOARD.read_text())
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        self.assertEqual(variables["node"]["type"], "query")
        self.assertNotIn("__inputs", d, "no import-time input: the datasource is a variable")
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        for p in d["panels"]:
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            self.assertTrue(p["targets"], p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertTrue(t["expr"].strip(), p["title"])
                self.assertEqual(t["datasource"]["uid"], "${datasource}")


def dashboard_queries():
    d = json.loads(DASHBOARD.read_text())
    for p in d["panels"]:
        for t in p["targets"]:
            expr = t["expr"].replace("$__rate_interval", "1m").replace("$node", ".*")
            yield p["title"], expr


class Consumer(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def log_lines():
    """The recorded daemon log as the daemon writes it into the socket (glog prefixes off)."""
    glog = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+\] (.*)$")
    for line in FIXTURE.read_text().splitlines():
        m = glog.match(line)
        yield m.group(1) if m else line


class LivePrometheus(unittest.TestCase):
    """One scenario, in order: the state is built up step by step."""

    def test_dashboard_queries_return_series_and_every_alert_fires(self):
        prometheus = tool("prometheus")
        ptp_events = binary()
        tmp = Path(tempfile.mkdtemp(prefix="ptp-events-monitoring-"))
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        api, metrics, prom = free_port(), free_port(), free_port()

        # What the producer learns of the node, as from the daemon's files.
        (tmp / "run").mkdir()
        (tmp / "run" / "ptp4l.1.config").write_text("#profile: tbc-tr\n[global]\n[ens4f0]\n")
        (tmp / "profiles").mkdir()
        (tmp / "profiles" / "n1").write_text(json.dumps([{
            "name": "tbc-tr", "interface": "ens4f0",
            "ptpClockThreshold": {"holdOverTimeout": 5, "maxOffsetThreshold": 100,
                                  "minOffsetThreshold": -100}}]))
        sock = tmp / "events.sock"
        producer = subprocess.Popen(
            [ptp_events, "proxy", "--api-bind", "127.0.0.1", "--api-port", str(api),
             "--metrics-addr", f"127.0.0.1:{metrics}", "--store-path", str(tmp / "store"),
             "--socket", str(sock), "--daemon-api", f"http://127.0.0.1:{free_port()}",
             "--failure-budget", "1", "--ptp-config-dir", str(tmp / "run"),
             "--profile-dir", str(tmp / "profiles")],
            env={**os.environ, "NODE_NAME": "n1", "LOG_LEVEL": "warn"},
            stdout=subprocess.DEVNULL)
        self.addCleanup(producer.kill)

        # Prometheus on loopback, every second; the rules with their `for:` at 0 (their
        # durations are promtool's unit tests' business).
        rules = re.sub(r"(?m)^(\s+for:) .*$", r"\1 0s", RULES.read_text())
        (tmp / "rules.yml").write_text(rules)
        (tmp / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yml]\n"
            f"scrape_configs:\n  - job_name: {JOB}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{metrics}']}}]\n")
        prom_log = open(tmp / "prometheus.log", "w")
        self.addCleanup(prom_log.close)
        server = subprocess.Popen(
            [prometheus, f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom}"],
            cwd=tmp, stdout=prom_log, stderr=subprocess.STDOUT)
        self.addCleanup(server.wait)
        self.addCleanup(server.kill)
        base = f"http://127.0.0.1:{prom}"
        wait("Prometheus ready", lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200)

        def query(expr):
            url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            status, body = http_json(url)
            self.assertEqual(body["status"], "success", expr)
            return body["data"]["result"]

        def firing():
            _, body = http_json(f"{base}/api/v1/alerts")
            return {a["labels"]["alertname"] for a in body["data"]["alerts"] if a["state"] == "firing"}

        def wait_firing(names, limit=30.0):
            seen = set()

            def check():
                seen.clear()
                seen.update(firing())
                return set(names) <= seen

            try:
                wait(f"alerts {sorted(names)}", check, limit)
            except AssertionError as e:
                debug = {q: query(q) for q in (
                    'cne_events_received{status="failed"} > 0',
                    'cne_delivery_subscriptions_removed_total',
                    'delta(cne_events_received{status="failed"}[5m])',
                )}
                raise AssertionError(f"{e}; firing: {sorted(seen)}; {debug}") from None

        # Scraped before anything happens: the counters' rises are then seen from 0 (they exist
        # at 0 from the producer's start).
        wait("a first scrape of the producer", lambda: query(
            f'up{{job="{JOB}"}} == 1 and on(instance) cne_delivery_subscriptions_removed_total == 0'))

        # A subscriber that answers the initial notification, then goes away: a dead endpoint.
        consumer = HTTPServer(("127.0.0.1", 0), Consumer)
        threading.Thread(target=consumer.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{consumer.server_address[1]}/event"
        sub = json.dumps({"ResourceAddress": "/cluster/node/n1/sync/ptp-status/lock-state",
                          "EndpointUri": endpoint}).encode()
        status, _ = wait("a subscription", lambda: http_json(
            f"http://127.0.0.1:{api}/api/ocloudNotifications/v2/subscriptions", sub))
        self.assertEqual(status, 201)
        consumer.shutdown()
        consumer.server_close()

        # The recorded log, then what the operator is paged for.
        out = wait("the producer's socket", lambda: _connect(sock))
        with out:
            for line in log_lines():
                out.sendall(line.encode() + b"\n")
            wait("the log's series scraped", lambda: query('openshift_ptp_clock_state{process="T-BC"} == 1'))
            for i in range(4):  # ptp4l restarting repeatedly
                out.sendall(f"ptp4l[{1757330000 + i}]:[ptp4l.0.config] PTP_PROCESS_STATUS:0\n".encode())
                out.sendall(f"ptp4l[{1757330000 + i}]:[ptp4l.0.config] PTP_PROCESS_STATUS:1\n".encode())
                time.sleep(1.2)
            out.sendall(b"T-BC[1757330010]:[ts2phc.1.config] ens4f0 offset 25 T-BC-STATUS s1\n")
            out.sendall(b"ptp4l[1757330010]:[ts2phc.1.config] CLOCK_CLASS_CHANGE 135\n")
            held = {"PtpClockNotLocked", "PtpClockClassDegraded", "PtpProcessRestarting",
                    "PtpEventDeliveriesFailing", "PtpSubscriptionsRemovedForDeadEndpoints"}
            wait_firing(held)
            self.assertNotIn("PtpClockFreerun", firing(), "HOLDOVER is not FREERUN")
            out.sendall(b"T-BC[1757330020]:[ts2phc.1.config] ens4f0 offset 99999999999 T-BC-STATUS s0\n")
            out.sendall(b"ptp4l[1757330020]:[ts2phc.1.config] CLOCK_CLASS_CHANGE 248\n")
            wait_firing({"PtpClockFreerun"})

            # Every dashboard query has series now.
            empty = [(title, expr) for title, expr in dashboard_queries() if not query(expr)]
            self.assertEqual(empty, [], "dashboard queries without series")

        # The producer dies: its scrape fails.
        producer.kill()
        producer.wait()
        wait_firing({"PtpEventsProducerDown"})
        self.assertEqual(query(f'up{{job="{JOB}"}}')[0]["value"][1], "0")


def _connect(path):
    if not path.exists():
        return None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        return None
    return s


if __name__ == "__main__":
    unittest.main()
