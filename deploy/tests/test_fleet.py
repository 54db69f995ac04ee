"""The cluster on one machine, small: `deploy/run-fleet.py --nodes 3` (no containers: the real
binaries in network namespaces, a real grandmaster ptp4l), its every check, and its result."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from test_manifests import ROOT, binary, require


class Fleet(unittest.TestCase):
    def test_three_nodes_share_a_grandmaster_and_each_consumer_hears_only_its_node(self):
        require(None if os.geteuid() == 0 else "run-fleet needs root (network namespaces)")
        require(None if shutil.which("ip") else "iproute2 (ip) is not installed")
        require(None if any(Path(p).exists() for p in ("/usr/sbin/ptp4l", "/usr/bin/ptp4l"))
                else "linuxptp (ptp4l) is not installed")
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "fleet.json"
            r = subprocess.run(
                [sys.executable, str(ROOT / "deploy/run-fleet.py"), "--nodes", "3",
                 "--binary", binary(), "--json", str(out)],
                capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, f"run-fleet failed:\n{r.stdout}\n{r.stderr}")
            result = json.loads(out.read_text())
        self.assertTrue(result["passed"])
        self.assertEqual(result["nodes"], 3)
        # Each measured step happened, in a plausible order of magnitude (not a speed test).
        for key in ("start_to_locked", "gm_loss_to_holdover", "gm_loss_to_freerun",
                    "gm_return_to_locked"):
            self.assertGreater(result[key]["last_s"], 0, key)
            self.assertLessEqual(result[key]["first_s"], result[key]["last_s"], key)
        # FREERUN follows HOLDOVER by the profile's holdOverTimeout (5 s).
        self.assertGreaterEqual(result["gm_loss_to_freerun"]["first_s"],
                                result["gm_loss_to_holdover"]["last_s"])
        self.assertGreater(result["daemon_kill_to_freerun_s"], 0)
        self.assertGreater(result["per_node"]["rss_mib_median"], 0)


if __name__ == "__main__":
    unittest.main()
