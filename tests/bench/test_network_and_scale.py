"""bench/network.py and bench/scale.py as a user runs them, at small sizes: each starts what it
measures, and leaves its table (and network.py its JSON and chart) behind."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_network_measures_one_and_two_nodes_and_the_load_reaches_both_signers(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH / "network.py"), "--sizes", "1,2", "--txs", "400",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "network.json").read_text())
    one, two = report["rows"]
    assert (one["nodes"], two["nodes"]) == (1, 2)
    for row in (one, two):
        assert row["confirmed"] == 400 and row["lost"] == 0 and row["agree"] and row["confirmed_tps"] > 0
    assert two["sealers"] == 2 and len(two["rss_each_mib"]) == 2  # both signers sealed blocks of the load
    assert sum(two["transactions_by_sealer"].values()) == 400
    assert "(" in done.stdout.splitlines()[2]  # the 2-node row carries its ratio to one node
    assert (tmp_path / "network.png").read_bytes()[:4] == b"\x89PNG"


def test_scale_builds_and_imports_blocks_and_reads_a_history(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH / "scale.py"), "--accounts", "500,2000", "--txs", "10,50",
                           "--history", "3000", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    small, large = json.loads(done.stdout.splitlines()[-1])["runs"]
    assert (small["accounts"], large["accounts"]) == (500, 2000)
    assert [b["txs"] for b in large["blocks"]] == [10, 50] and all(b["import_ms"] > 0 for b in large["blocks"])
    after = small["after_history"]
    assert small["history_txs"] >= 3000 and after["logs"] > small["before_history"]["logs"] > 0
    assert "after_history" not in large  # the history runs on the first size only


def test_sync_serves_a_built_chain_to_an_empty_node_and_times_it(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH / "sync.py"), "--blocks", "300", "--txs", "0,5", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    empty, small = json.loads(done.stdout)["results"]
    assert (empty["txs_per_block"], small["txs_per_block"]) == (0, 5)
    for row in (empty, small):
        assert row["synced"] == 300 and row["blocks_per_s"] > 0 and row["syncer_rss_mib"] > 0
        assert sum(r["blocks"] for r in row["log_rounds"]) == 300  # the syncing node says it synced them all
    assert small["txs_per_s"] > 0 == empty["txs_per_s"]
