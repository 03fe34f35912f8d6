"""`gridnode sim v2v`: federated EV traders with PoSOC against the thesis's two baselines
(§4.4, Figs. 4.7, 4.11–4.12).

Trains three populations on the same seeds: federated with δ (the proposal), each EV alone
(baseline 1) and federated without δ in the reward (baseline 2); then plays every model
greedily on the same test stays and reports the mean arbitrage profit per stay, where
energy is sold and bought (beside the hours parked in each band, which bound it), how the
PoSOC hour score follows peak discharge, and the mean training reward over all windows (the
area under Fig. 4.11's curves: federation pays off in how fast the EVs learn, while with
identically distributed stays every EV alone ends near the same policy; baseline 2's reward
lacks δ, so its scale differs).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from market.economics.federated import Evaluation, Setup, Training, evaluate, train
from market.economics.v2v import sample_days

METHODS = {"federated": {}, "no_federation": {"federated": False}, "no_delta": {"use_delta": False}}


@dataclass(frozen=True)
class Settings:
    """What one run trains and tests."""

    evs: int = 5
    """EVs in the federation."""
    windows: int = 100
    """24-hour training windows."""
    stays: int = 8
    """Simulated stays each EV learns from per window."""
    test_stays: int = 200
    """Test stays per EV."""
    seed: int = 0


def run(settings: Settings = Settings(), plot: str | None = None, progress: bool = False) -> dict:
    """Train the three populations, test them greedily and summarise; writes the figure to
    `plot` (a PNG path) when given."""
    from tqdm import tqdm

    bar = tqdm(total=len(METHODS) * settings.windows, disable=not progress, file=sys.stderr, desc="training")
    test_days = sample_days(settings.test_stays, np.random.default_rng([settings.seed, 1]))
    trained: dict[str, Training] = {}
    evaluated: dict[str, Evaluation] = {}
    for name, options in METHODS.items():
        setup = Setup(evs=settings.evs, windows=settings.windows, stays_per_window=settings.stays, **options)
        trained[name] = train(setup, settings.seed, on_window=bar.update)
        evaluated[name] = evaluate(trained[name].models, test_days)
    bar.close()
    ours = evaluated["federated"]
    result = {
        "profit": {name: round(e.profit, 3) for name, e in evaluated.items()},
        "training_reward": {name: round(float(np.mean(t.mean_reward)), 3) for name, t in trained.items()},
        "onpeak_sell_share": _share(ours.sold_by_band[2], ours.sold_by_band),
        "offpeak_buy_share": _share(ours.bought_by_band[0], ours.bought_by_band),
        "outside_onpeak_buy_share": _share(ours.bought_by_band[0] + ours.bought_by_band[1], ours.bought_by_band),
        "sold_kwh_by_band": dict(zip(("off", "mid", "on"), (round(v, 3) for v in ours.sold_by_band))),
        "bought_kwh_by_band": dict(zip(("off", "mid", "on"), (round(v, 3) for v in ours.bought_by_band))),
        "parked_hours_by_band": dict(zip(("off", "mid", "on"), (round(v, 3) for v in ours.parked_by_band))),
        "posoc_hour_score_by_band": dict(zip(("off", "mid", "on"), (round(v, 3) for v in ours.score_by_band))),
        "posoc_discharge_correlation": round(ours.score_discharge_correlation, 4),
        "aggregators": list(trained["federated"].aggregators),
        "mining_reward_cents": round(sum(trained["federated"].mining_rewards) / 100, 2),
    }
    if plot:
        _plot(trained, plot)
    return result


def _share(part: float, by_band: tuple[float, float, float]) -> float:
    """Fraction of the energy traded in all bands; 0 when nothing was traded."""
    total = sum(by_band)
    return round(part / total, 4) if total > 0 else 0.0


def _plot(trained: dict[str, Training], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, training in trained.items():
        curve = np.asarray(training.mean_reward)
        window = max(1, len(curve) // 10)
        ax.plot(np.convolve(curve, np.ones(window) / window, mode="valid"), label=name)
    ax.set_xlabel("24-hour window")
    ax.set_ylabel("mean episode reward (running mean)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
