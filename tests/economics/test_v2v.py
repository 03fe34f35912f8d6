"""The V2V MDP (eqs. 4.10–4.16), the PPO learner and federated averaging (4.19)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from market.economics import actor_critic as ac
from market.economics.federated import Setup, evaluate, fedavg, train
from market.economics.v2v import (ACTIONS, CAPACITY_KWH, ETA, OBSERVATION_SIZE, POWER_KWH, SOC_MAX, SOC_MIN, Days,
                                  sample_days, step)


def test_sampled_days_respect_table_4_1():
    days = sample_days(2000, np.random.default_rng(0))
    assert days.arrival.min() >= 4 and days.arrival.max() <= 10
    assert days.departure.max() <= 22 and (days.departure > days.arrival).all()
    assert days.soc.min() >= 0.4 and days.soc.max() <= 0.9
    assert days.arrival.mean() == pytest.approx(7, abs=0.1) and days.soc.mean() == pytest.approx(0.508, abs=0.01)  # N(0.5, 0.1²) clipped below at 0.4
    assert days.prices.mean(axis=0) == pytest.approx([6.8, 10.0, 12.9], abs=0.2)


def test_random_trading_keeps_the_soc_limits():
    rng = np.random.default_rng(1)
    days = sample_days(300, rng)
    soc = days.soc.copy()
    for hour in range(24):
        result = step(days, soc, hour, rng.integers(len(ACTIONS), size=days.count))
        within = (result.soc >= SOC_MIN - 1e-12) & (result.soc <= SOC_MAX + 1e-12)
        moved_toward = np.abs(result.soc - 0.5) <= np.abs(soc - 0.5) + 1e-12  # an EV above 0.8 may only sell
        assert (within | moved_toward).all()
        soc = result.soc


def test_reward_of_one_hour_by_hand():
    days = Days(arrival=np.array([7]), departure=np.array([9]), soc=np.array([0.5]),
                prices=np.array([[6.8, 10.0, 12.9]]))
    sell = step(days, days.soc, 7, np.array([0]))  # sell 7 kWh on-peak
    v2v = 12.9 * 0.75
    assert sell.energy[0] == -7.0 and sell.reward[0] == pytest.approx(6.1 / 6.8 * 7 * v2v)
    assert sell.profit[0] == pytest.approx(7 * (v2v - 6.8))
    leave = step(days, sell.soc, 8, np.array([2]))  # hold in the last hour: range anxiety (4.15)
    assert leave.reward[0] == pytest.approx(-ETA * (0.5 - 7 / CAPACITY_KWH - SOC_MAX) ** 2)
    assert leave.score[0] == pytest.approx((SOC_MAX - sell.soc[0]) * CAPACITY_KWH)
    idle = step(days, days.soc, 12, np.array([0]))  # not parked after departure
    assert idle.energy[0] == 0 and idle.reward[0] == 0


def test_ppo_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    hyper = ac.Hyper(hidden=6)
    params = ac.init_params(OBSERVATION_SIZE, len(ACTIONS), hyper.hidden, rng)
    params["a_w2"] = rng.normal(0, 0.5, params["a_w2"].shape)
    obs = rng.normal(size=(16, OBSERVATION_SIZE))
    actions = rng.integers(len(ACTIONS), size=16)
    old_logp = np.log(ac.policy(params, obs)[0][np.arange(16), actions]) + rng.normal(0, 0.05, 16)
    adv, returns = rng.normal(size=16), rng.normal(size=16)

    def loss(p):
        probs = ac.policy(p, obs)[0]
        ratio = probs[np.arange(16), actions] / np.exp(old_logp)
        surrogate = np.minimum(ratio * adv, np.clip(ratio, 1 - hyper.clip, 1 + hyper.clip) * adv)
        entropy = -(probs * np.log(probs)).sum(axis=1)
        return (-surrogate.mean() - hyper.entropy * entropy.mean()
                + hyper.value_coef * ((ac.value(p, obs)[0] - returns) ** 2).mean())

    grads = ac.gradients(params, obs, actions, old_logp, adv, returns, hyper)
    for key in ("a_w1", "a_b2", "c_w1", "c_b2"):
        index = tuple(rng.integers(s) for s in params[key].shape)
        bumped_up, bumped_down = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
        bumped_up[key][index] += 1e-6
        bumped_down[key][index] -= 1e-6
        assert grads[key][index] == pytest.approx((loss(bumped_up) - loss(bumped_down)) / 2e-6, abs=1e-6)


def test_fedavg_is_the_mean_of_the_local_models():
    rng = np.random.default_rng(3)
    models = [ac.init_params(4, 3, 5, rng) for _ in range(3)]
    average = fedavg(models)
    for key in models[0]:
        assert average[key] == pytest.approx((models[0][key] + models[1][key] + models[2][key]) / 3)
    assert all((fedavg([models[0]] * 4)[k] == models[0][k]).all() for k in models[0])


def test_training_is_deterministic_for_a_seed():
    setup = Setup(evs=2, windows=3, stays_per_window=4)
    first, second = train(setup, 5), train(setup, 5)
    assert first.aggregators == second.aggregators
    assert all((first.models[0][k] == second.models[0][k]).all() for k in first.models[0])


def test_trained_agents_sell_on_peak_and_beat_the_no_delta_baseline():
    test_days = sample_days(60, np.random.default_rng(7))
    ours = evaluate(train(Setup(evs=3, windows=50), 0).models, test_days)
    baseline = evaluate(train(Setup(evs=3, windows=50, use_delta=False), 0).models, test_days)
    assert ours.sold_by_band[2] > 0.9 * sum(ours.sold_by_band)
    assert ours.bought_by_band[2] < 0.1 * sum(ours.bought_by_band)
    assert ours.bought_by_band[0] <= POWER_KWH * ours.parked_by_band[0]  # off-peak buying is capped by parking
    assert ours.score_by_band[2] > ours.score_by_band[1]
    assert ours.profit > baseline.profit


def test_gridnode_sim_v2v_prints_the_required_json():
    output = subprocess.run(
        [sys.executable, "-m", "cli.main", "sim", "v2v", "--json", "--evs", "2", "--windows", "6",
         "--stays", "4", "--test-stays", "10"], capture_output=True, text=True, check=True, timeout=120).stdout
    result = json.loads(output)
    assert set(result["profit"]) == {"federated", "no_federation", "no_delta"}
    assert all(np.isfinite(v) for v in result["profit"].values())
    assert 0 <= result["onpeak_sell_share"] <= 1 and 0 <= result["offpeak_buy_share"] <= 1
    assert len(result["aggregators"]) == 6 and all(0 <= a < 2 for a in result["aggregators"])
