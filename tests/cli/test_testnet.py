"""`gridnode testnet`: manifests are refused with the field and the reason before anything starts;
a soak's timeline is reproduced by its seed; and (slow) the shipped manifests run a real localnet
under load and faults with every invariant holding."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.testnet.checker import table
from cli.testnet.manifest import ManifestError, load, parse, soak

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_manifests_parse():
    for name in ("poa", "pow"):
        manifest = load(ROOT / "testnets" / f"{name}.toml")
        assert manifest.engine == name and manifest.nodes == 4
        actions = {p.action for p in manifest.perturbations}
        assert {"kill", "restart", "partition", "heal", "pause", "resume", "stop"} <= actions


@pytest.mark.parametrize("data, reason", [
    ({"engine": "raft"}, "engine: one of poa, pow"),
    ({"nodes": 0}, "nodes: an integer in 1..8"),
    ({"colour": "blue"}, "unknown field(s): colour"),
    ({"hashrates": [1, 2]}, "hashrates: only for engine"),
    ({"engine": "pow", "nodes": 2, "hashrates": [1]}, "hashrates: 2 positive integers"),
    ({"load": {"rate": -1}}, "load.rate: a number in 0..1000"),
    ({"perturb": [{"at": 1, "action": "explode", "nodes": [0]}]}, "perturb[0].action"),
    ({"perturb": [{"at": 1, "action": "kill", "nodes": [9]}]}, "node indices are 0..3"),
    ({"perturb": [{"at": 1, "action": "kill", "nodes": [1]}]}, "must end whole (liveness is checked after it): still node1 killed"),
    ({"perturb": [{"at": 1, "action": "restart", "nodes": [1]}]}, "node1 is not killed or stopped"),
    ({"perturb": [{"at": 1, "action": "pause", "nodes": [1]}, {"at": 2, "action": "restart", "nodes": [1]}]},
     "node1 is not killed or stopped"),
    ({"perturb": [{"at": 5, "action": "heal"}]}, "no partition to heal"),
    ({"perturb": [{"at": 5, "action": "partition", "groups": [[0, 1], [1, 2]]}]}, "a node in two groups"),
    ({"perturb": [{"at": 9, "action": "kill", "nodes": [1]}, {"at": 2, "action": "restart", "nodes": [1]}]},
     "in the order of their `at`"),
    ({"duration": 10, "perturb": [{"at": 11, "action": "heal"}]}, "perturb[0].at: a number in 0..10"),
])
def test_a_bad_manifest_is_refused_with_the_field_and_the_reason(data, reason):
    with pytest.raises(ManifestError) as error:
        parse(data)
    assert reason in str(error.value)


def test_a_missing_or_broken_file_is_a_readable_error(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("engine = \n")
    for path, reason in ((tmp_path / "none.toml", "No such file"), (broken, "not TOML")):
        result = subprocess.run([sys.executable, "-m", "cli.main", "testnet", "run", str(path)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and reason in result.stderr and "Traceback" not in result.stderr


def test_a_soak_timeline_is_its_seeds_and_ends_whole():
    first, again, other = soak("poa", 4, 600, 7), soak("poa", 4, 600, 7), soak("poa", 4, 600, 8)
    assert first == again and first != other
    assert first.healed_at <= 590 and len(first.perturbations) >= 20
    assert {p.action for p in first.perturbations} >= {"partition", "heal"}
    for p in first.perturbations:
        assert len(p.nodes) <= 1  # a minority of 4: one node at a time
    with pytest.raises(ManifestError, match="30.."):
        soak("poa", 4, 10, 0)


def test_the_table_says_pass_or_fail_with_the_evidence():
    text = table([{"name": "safety", "ok": True, "evidence": "identical"},
                  {"name": "acknowledged", "ok": False, "evidence": "node1 lacks 2"}])
    assert text.splitlines() == ["  PASS  safety        identical", "  FAIL  acknowledged  node1 lacks 2"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["poa", "pow"])
def test_the_shipped_manifest_runs_with_every_invariant_holding(engine, tmp_path):
    result = subprocess.run([sys.executable, "-m", "cli.main", "testnet", "run", str(ROOT / "testnets" / f"{engine}.toml"),
                             "--dir", str(tmp_path / "net"), "--json"], capture_output=True, text=True, timeout=300)
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    rows = {row["name"]: row for row in report["invariants"]}
    assert set(rows) == {"safety", "acknowledged", "nonces", "conservation", "liveness"}
    assert all(row["ok"] for row in rows.values()), checker_text(report)
    assert result.returncode == 0
    assert report["load"]["acknowledged"] > 50 and rows["acknowledged"]["lost"] == 0
    assert [p["action"] for p in report["perturbations"]][:2] == ["kill node3", "restart node3"]
    history = [json.loads(line) for line in (tmp_path / "net" / "history.jsonl").read_text().splitlines()]
    assert {op["op"] for op in history} >= {"submit", "ack", "receipt", "perturb"}


def checker_text(report: dict) -> str:
    return table(report["invariants"]) + "\n" + json.dumps(report["perturbations"])
