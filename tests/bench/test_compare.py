"""bench/compare.py as a user runs it: it starts its own devnet (and Anvil when installed), sends
the transfers, and leaves the table, the JSON and the chart behind."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "compare.py"


def test_compare_measures_a_devnet_and_writes_the_table_json_and_chart(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), "--txs", "300", "--no-anvil", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0].split()[:3] == ["node", "confirmed", "tx/s"]
    report = json.loads((tmp_path / "compare.json").read_text())
    (row,) = report["rows"]
    assert row["label"] == "gridnode" and row["confirmed"] == 300 and row["lost"] == 0 and not row["failures"]
    assert row["confirmed_tps"] > 0 and row["p50"] <= row["p95"] and row["rss_mib"] > 0
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
