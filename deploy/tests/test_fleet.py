"""The cluster on one machine, small: `deploy/run-fleet.py --nodes 3` (no containers: the real
binaries in network namespaces, a real grandmaster ptp4l), its every check, and its result; its
cleanup when it is stopped; its reading of a consumer's output."""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from test_manifests import ROOT, binary, require


def load_run_fleet():
    spec = importlib.util.spec_from_file_location("run_fleet", ROOT / "deploy/run-fleet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_fleet = load_run_fleet()


def fleet_namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [l.split()[0] for l in out.splitlines()
            if l.split() and l.split()[0].startswith(run_fleet.PREFIX)]


def requirements():
    require(None if os.geteuid() == 0 else "run-fleet needs root (network namespaces)")
    require(None if shutil.which("ip") else "iproute2 (ip) is not installed")
    require(None if any(Path(p).exists() for p in ("/usr/sbin/ptp4l", "/usr/bin/ptp4l"))
            else "linuxptp (ptp4l) is not installed")


def run_script(args, timeout):
    """Runs run-fleet.py; on a timeout it gets SIGTERM (its own cleanup), then SIGKILL."""
    p = subprocess.Popen([sys.executable, str(ROOT / "deploy/run-fleet.py"), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        raise AssertionError(f"run-fleet did not finish in {timeout} s:\n{out}\n{err}")
    return p.returncode, out, err


class Fleet(unittest.TestCase):
    def setUp(self):
        # Whatever happens to the script (killed, timed out), no ptpfleet-* namespace, process
        # or /etc/netns entry outlives the test.
        self.addCleanup(run_fleet.cleanup)

    def test_three_nodes_share_a_grandmaster_and_each_consumer_hears_only_its_node(self):
        requirements()
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "fleet.json"
            code, stdout, stderr = run_script(
                ["--nodes", "3", "--binary", binary(), "--json", str(out)], 600)
            self.assertEqual(code, 0, f"run-fleet failed:\n{stdout}\n{stderr}")
            result = json.loads(out.read_text())
        self.assertEqual(fleet_namespaces(), [])
        self.assertTrue(result["passed"])
        self.assertEqual(result["nodes"], 3)
        # Each measured step happened, in a plausible order of magnitude (not a speed test).
        for key in ("start_to_locked", "gm_loss_to_holdover", "gm_loss_to_freerun",
                    "gm_return_to_locked", "holdover_to_freerun_per_node"):
            self.assertGreater(result[key]["last_s"], 0, key)
            self.assertLessEqual(result[key]["first_s"], result[key]["last_s"], key)
        # Each node's FREERUN follows its own HOLDOVER by the profile's holdOverTimeout (5 s).
        self.assertGreaterEqual(result["holdover_to_freerun_per_node"]["first_s"],
                                run_fleet.HOLDOVER_S - 0.25)
        self.assertGreater(result["daemon_kill_to_freerun_s"], 0)
        self.assertGreater(result["per_node"]["rss_mib_median"], 0)
        self.assertEqual(result["consumer_unreadable_events"], 0)

    def test_sigterm_stops_every_process_and_deletes_the_namespaces(self):
        requirements()
        p = subprocess.Popen([sys.executable, str(ROOT / "deploy/run-fleet.py"), "--nodes", "2",
                              "--binary", binary()],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            # Stopped while it runs: its nodes' namespaces exist and their processes run.
            while len(fleet_namespaces()) < 6 or not any(
                    subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                   text=True).stdout.split() for ns in fleet_namespaces()):
                self.assertIsNone(p.poll(), "run-fleet exited before it was stopped")
                self.assertLess(time.monotonic(), deadline, "no fleet namespaces within 60 s")
                time.sleep(0.2)
            time.sleep(1)
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        # A stopped run keeps its logs, and says where: not wanted from a test.
        kept = re.search(r"logs kept in (\S+)", out)
        if kept:
            shutil.rmtree(kept.group(1), ignore_errors=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(fleet_namespaces(), [], out)
        self.assertEqual(list(Path("/etc/netns").glob(run_fleet.PREFIX + "*"))
                         if Path("/etc/netns").exists() else [], [])


class ConsumerOutput(unittest.TestCase):
    def test_a_garbage_line_is_counted_and_the_events_after_it_are_still_read(self):
        event = {"source": "/cluster/node/fleet-0/sync/ptp-status/lock-state",
                 "data": {"values": [{"ResourceAddress": "/cluster/node/fleet-0/ens1f0/master",
                                      "value": "LOCKED"}]}}
        record = lambda msg: json.dumps({"fields": {"message": msg}})
        lines = ["thread 'main' panicked at src/x.rs", "[1, 2]", record("received event {oops"),
                 record("received event " + json.dumps({"source": 3})),
                 record("subscribed"), record("received event " + json.dumps(event))]
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
            events = run_fleet.Events(p, "fleet-0", Path(d) / "consumer-0.log")
            p.stdin.write("".join(l + "\n" for l in lines))
            p.stdin.close()
            events.thread.join(10)
            p.wait()
            p.stdout.close()
            self.assertFalse(events.thread.is_alive())
            self.assertEqual(events.unparsed, 2)
            self.assertEqual(len(events.bad_events), 2)
            self.assertEqual([v for _, v, _ in events.lock_states()], ["LOCKED"])
            self.assertEqual(len((Path(d) / "consumer-0.log").read_text().splitlines()), 6)

    def test_the_container_form_reads_the_manifests_text_logs_with_their_own_times(self):
        # run-pods-fleet.py reads the consumer container's log (the manifest sets no
        # --log-format: text), each event stamped with its line's time; podman's k8s-file log
        # splits a long line into partial entries (P), which it joins again.
        try:
            import yaml  # noqa: F401  (run-pods.py renders the manifests with it)
        except ImportError:
            require("PyYAML is not installed")
        spec = importlib.util.spec_from_file_location("run_pods_fleet",
                                                      ROOT / "deploy/run-pods-fleet.py")
        pods_fleet = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pods_fleet)
        event = {"source": "/sync/ptp-status/lock-state",
                 "data": {"values": [{"ResourceAddress": "/cluster/node/worker-1/ens1fx/master",
                                      "value": "HOLDOVER"}]}}
        lines = ["2026-12-04T11:37:10.000000Z  INFO ptp_events::consumer: subscribed",
                 "not a log line at all",
                 "2026-12-04T11:37:12.500000Z  INFO ptp_events::consumer: received event "
                 + json.dumps(event)]
        entries = [f"2026-12-04T11:37:10.1+00:00 stdout F {lines[0]}",
                   f"2026-12-04T11:37:10.2+00:00 stderr F {lines[1]}",
                   f"2026-12-04T11:37:12.6+00:00 stdout P {lines[2][:100]}",
                   f"2026-12-04T11:37:12.6+00:00 stdout P {lines[2][100:150]}",
                   f"2026-12-04T11:37:12.6+00:00 stdout F {lines[2][150:]}"]
        with tempfile.TemporaryDirectory() as d:
            ctr_log = Path(d) / "ctr.log"
            ctr_log.write_text("".join(e + "\n" for e in entries))
            log = pods_fleet.ContainerLog.__new__(pods_fleet.ContainerLog)
            log.tail = subprocess.Popen(["cat", str(ctr_log)], stdout=subprocess.PIPE, text=True)
            log.stdout = log._lines()
            events = pods_fleet.PodEvents(log, "worker-1", Path(d) / "consumer-1.log", "none")
            events.thread.join(10)
            log.wait()
            log.tail.stdout.close()
            self.assertEqual((Path(d) / "consumer-1.log").read_text().splitlines(), lines)
        self.assertEqual(events.unparsed, 1)
        self.assertEqual(events.bad_events, [])
        [(t, value, _)] = events.lock_states()
        self.assertEqual(value, "HOLDOVER")
        wall = t + pods_fleet.PodEvents.WALL_TO_MONO
        self.assertAlmostEqual(wall, 1796384232.5, places=3)


if __name__ == "__main__":
    unittest.main()
