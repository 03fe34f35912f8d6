"""Issue 12's `gridnode sim v2v --live`: EV agents as processes on a 5-node PoSOC localnet, checked
from what the chain recorded; and, cheaply, the agent's own rules (orders, the day it learns from,
which committed updates an mLAG includes, what it does about a fee)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from consensus.posoc.engine import MAX_CHALLENGE_BYTES, POSOC_ADDRESS, commitment
from consensus.rules import fedavg
from market.agents.ev_agent import (FEE_CONFISCATED, FEE_NONE, FEE_OWED, FEE_PAID, Hour,
                                    committed_updates, day_rng, draw_day, ev_keys, fee_decision, order_for,
                                    trajectory, v2v_price)
from market.economics import actor_critic as ac
from market.economics.federated import local_update, to_model
from market.economics.v2v import ACTIONS, OBSERVATION_SIZE, observe

EVS = ["0x" + f"{k + 1:040x}" for k in range(3)]
WINDOW_SECONDS = 24


def _model(seed: int) -> fedavg.Model:
    return to_model(ac.init_params(OBSERVATION_SIZE, len(ACTIONS), 4, np.random.default_rng(seed)))


def _block(number: int, timestamp: int, txs: list[dict]) -> dict:
    return {"number": hex(number), "timestamp": hex(timestamp), "transactions": txs}


def _commit_tx(sender: str, round_: int, model_hash: bytes, size: int = 100) -> dict:
    return {"from": sender, "to": POSOC_ADDRESS.to_checksum(), "input": "0x" + commitment(round_, model_hash, size).hex()}


def test_orders_trade_the_actions_energy_at_the_midpoint_and_sell_only_tokens_held():
    assert v2v_price(129, 64) == 96 and v2v_price(68, 34) == 51
    assert 64 <= v2v_price(129, 64) <= 129
    assert order_for(3.5, 0) == (True, 3500)
    assert order_for(-7.0, 21_000) == (False, 7000)
    assert order_for(-7.0, 2_500) == (False, 2500)
    assert order_for(-0.0004, 10) == (False, 0)


def test_an_evs_days_are_table_4_1s_at_the_chains_tariff_and_repeatable():
    a, b = draw_day(day_rng(0, 12), (68, 100, 129)), draw_day(day_rng(0, 12), (68, 100, 129))
    assert (a.arrival, a.departure, a.soc) == (b.arrival, b.departure, b.soc)
    assert 4 <= a.arrival[0] < a.departure[0] <= 22
    assert a.prices.tolist() == [[6.8, 10.0, 12.9]]
    other = draw_day(day_rng(0, 13), (68, 100, 129))
    assert (other.arrival[0], other.soc[0]) != (a.arrival[0], a.soc[0])


def test_the_live_day_is_a_trajectory_the_ppo_update_learns_from():
    day = draw_day(day_rng(1, 10), (68, 100, 129))
    params = ac.init_params(OBSERVATION_SIZE, len(ACTIONS), 8, np.random.default_rng(0))
    hours = []
    for h in range(24):
        obs = observe(day, day.soc, h)[0]
        parked = int(day.arrival[0]) <= h < int(day.departure[0])
        hours.append(Hour(obs, 0 if parked else 2, -1.6, 0.0, reward=1.0 if parked else 0.0, active=parked,
                          energy=-1.0 if parked else 0.0))
    t = trajectory(hours)
    assert t.obs.shape == (24, 1, OBSERVATION_SIZE) and t.actions.shape == (24, 1)
    assert int(t.active.sum()) == int(day.departure[0] - day.arrival[0])
    updated = local_update(params, ac.Adam(1e-2), t, ac.Hyper(hidden=8))
    assert set(updated) == set(params) and any(not np.array_equal(updated[k], params[k]) for k in params)


def test_the_mlag_reads_the_commitments_the_engine_accepts():
    """First per EV, in the round's own window, for that round, from an EV; nothing else."""
    h = [bytes([k]) * 32 for k in range(6)]
    blocks = [
        _block(5, 23, [_commit_tx(EVS[0], 1, h[0])]),                      # window 0: a block before the round
        _block(6, 24, [_commit_tx(EVS[1], 1, h[1]), _commit_tx(EVS[1], 1, h[2])]),  # second is ignored
        _block(7, 30, [_commit_tx("0x" + "ab" * 20, 1, h[3]),                # not an EV
                       _commit_tx(EVS[2], 0, h[4]),                           # another round
                       {"from": EVS[0], "to": "0x" + "00" * 20, "input": "0x" + commitment(1, h[5], 9).hex()}]),
        _block(8, 47, [_commit_tx(EVS[0], 1, h[5], 200)]),
        _block(9, 48, [_commit_tx(EVS[2], 1, h[4])]),                       # window 2: too late
    ]
    assert committed_updates(blocks, 1, WINDOW_SECONDS, EVS) == {1: (h[1], 100), 0: (h[5], 200)}


def test_the_mlag_includes_what_it_could_fetch_that_decodes_within_the_size_bound():
    models = [_model(k) for k in range(4)]
    blobs = {k: m.encode() for k, m in enumerate(models)}
    size = len(blobs[0])
    committed = {k: (m.hash, size) for k, m in enumerate(models)}
    other_layout = to_model({"w": np.zeros(3)})
    committed[4] = (other_layout.hash, len(other_layout.encode()))
    blobs[4] = other_layout.encode()
    blobs[2] = None                                                         # nobody served it
    committed[5] = (b"\x01" * 32, size)
    blobs[5] = models[3].encode()                                           # bytes that do not hash to the commitment
    included, chosen = fedavg.includable(committed, blobs, MAX_CHALLENGE_BYTES)
    assert included == [0, 1, 3]
    assert fedavg.fedavg(chosen).hash == fedavg.aggregate_hash([blobs[0], blobs[1], blobs[3]])
    assert fedavg.includable(committed, blobs, 2 * size)[0] == [0, 1]


def test_a_fee_is_paid_skipped_once_by_a_selfish_agent_and_settled_after_confiscation():
    assert fee_decision(FEE_OWED, selfish_left=False) == "pay"
    assert fee_decision(FEE_OWED, selfish_left=True) == "skip"
    assert fee_decision(FEE_CONFISCATED, selfish_left=False) == "settle"
    assert fee_decision(FEE_NONE, selfish_left=True) is None and fee_decision(FEE_PAID, selfish_left=True) is None


def test_an_evs_charger_is_devnet_account_20_plus_k_minus_1():
    from genesis.devnet import dev_accounts

    accounts = dev_accounts(40)
    assert ev_keys(12) == (accounts[12].private_key, accounts[31].private_key)
    with pytest.raises(RuntimeError, match="#1..#19"):
        ev_keys(20)


@pytest.mark.slow
def test_live_v2v_trades_between_evs_learns_federated_and_confiscates_a_selfish_fee(tmp_path):
    run = subprocess.run([sys.executable, "-m", "cli.main", "sim", "v2v", "--live", "--nodes", "5", "--evs", "10",
                          "--days", "2", "--hour-seconds", "1", "--selfish", "0", "--pretrain", "30",
                          "--grace-hours", "6", "--seed", "0", "--dir", str(tmp_path / "net"), "--json"],
                         capture_output=True, text=True, timeout=170)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    checks = result["checks"]
    assert checks["agreement"]["ok"] and checks["agreement"]["nodes"] == 5
    assert checks["fills"]["between_evs"] > 0
    assert checks["reports"]["on_chain"] > 0 and checks["reports"]["failed"] == 0
    federation = checks["federation"]
    assert federation["commit_txs"] >= 2 * 9 and federation["aggregate_txs"] >= 2
    assert all(matches and all(m is True for m in matches) for matches in federation["checked"].values())
    assert checks["fees"]["paid"] > 0
    selfish = checks["selfish"]
    assert selfish["ok"], selfish
    assert selfish["barred_after_confiscation"] is True and selfish["barred_after_settling"] is False
    assert selfish["confiscated_block"] < selfish["refused_orders"][0]["block"] <= selfish["settled_block"]
    assert checks["agents"]["exit_codes"] == [0] * 10
    assert result["passed"]
    print(f"\nlive V2V run took {result['seconds']} s; {checks['fills']['between_evs']} fills")
