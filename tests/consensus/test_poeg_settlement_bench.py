"""bench/settlement.py at 10 prosumers: the script runs, its settlement fits and verifies, and the
bars are judged on a 1,000-prosumer row only."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from consensus.poeg.settlement import EXACT_SHAPLEY_MEMBERS, MAX_SETTLEMENT_BYTES

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "settlement.py"


def load_bench():
    """By file path: bench/ is not a package, and bench/market.py must not shadow `market`."""
    spec = importlib.util.spec_from_file_location("settlement_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_prosumers_settle_within_the_byte_limit_and_verify():
    row = load_bench().measure(10, "normal", seed=0, repeat=1)
    assert row["fits"] and 0 < row["bytes"] <= MAX_SETTLEMENT_BYTES
    assert row["coalitions"] >= 1 and 1 <= row["largest"] <= 10
    assert 0 <= row["miner_size"] <= row["largest"] and row["reward_wh"] >= 0
    exact = row["miner_size"] <= EXACT_SHAPLEY_MEMBERS
    assert row["worth_certificates"] == (max(2 ** row["miner_size"] - 2, 0) if exact else 0)


def test_the_cli_prints_json_rows_and_judges_only_1000(capsys):
    bench = load_bench()
    assert bench.main(["--sizes", "10", "--repeat", "1", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["prosumers"] == 10
    assert "PASS" not in out.err and "FAIL" not in out.err


def test_a_slow_propose_fails_its_bar_and_an_oversized_settlement_fails_verify():
    bench = load_bench()
    row = {"prosumers": 1000, "search_s": 9.5, "propose_s": 1.0, "verify_s": 0.5, "bytes": 130_000, "fits": False}
    assert [passed for passed, _ in bench.verdicts(row)] == [False, True, False]
