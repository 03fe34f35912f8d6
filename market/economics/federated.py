"""Federated actor-critic training of EV traders (thesis §4.3.4, Algorithm 4).

Every 24-hour window each EV trains the current model on its own stays (its local data
never leaves it), the window's PoSOC scores (4.17) draw the mLAG by weighted random
sampling (4.18), the mLAG averages the local models (FedAvg, 4.19) and earns the mining
fee β·profit from every EV (4.20). The two baselines of §4.4.7 are the same loop without
averaging (baseline 1: each EV learns alone) and without δ in the reward (baseline 2).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from consensus.rules.fedavg import DEFAULT_BITS, MAX_MAGNITUDE, Model, ModelError
from consensus.sampling import derive_seed
from market.economics import actor_critic as ac
from consensus.rules.posoc import charge_fees, choose_aggregator, open_book, pay_fee
from market.economics.v2v import ACTIONS, BAND_OF_HOUR, OBSERVATION_SIZE, Days, observe, sample_days, step


@dataclass(frozen=True)
class Trajectory:
    """One batch of stays, arrays shaped (24 hours, stays)."""

    obs: np.ndarray
    actions: np.ndarray
    logp: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    active: np.ndarray
    energy: np.ndarray
    profit: np.ndarray
    score: np.ndarray


def rollout(params: ac.Params, days: Days, rng: np.random.Generator, use_delta: bool = True,
            greedy: bool = False) -> Trajectory:
    """Run every stay in `days` through the day, hour by hour, with the policy (sampled, or its
    most likely action when `greedy`)."""
    soc = days.soc.copy()
    rows: dict[str, list[np.ndarray]] = {k: [] for k in Trajectory.__dataclass_fields__}
    for hour in range(24):
        obs = observe(days, soc, hour)
        probs, _ = ac.policy(params, obs)
        if greedy:
            action = probs.argmax(axis=1)
        else:
            action = (probs.cumsum(axis=1) > rng.random((days.count, 1))).argmax(axis=1)
        result = step(days, soc, hour, action, use_delta)
        for key, array in (("obs", obs), ("actions", action), ("logp", np.log(probs[np.arange(days.count), action])),
                           ("rewards", result.reward), ("values", ac.value(params, obs)[0]),
                           ("active", (days.arrival <= hour) & (hour < days.departure)),
                           ("energy", result.energy), ("profit", result.profit), ("score", result.score)):
            rows[key].append(array)
        soc = result.soc
    return Trajectory(**{k: np.stack(v) for k, v in rows.items()})


def local_update(params: ac.Params, optimiser: ac.Adam, trajectory: Trajectory, hyper: ac.Hyper) -> ac.Params:
    """Algorithm 4 lines 5–10: advantages, then PPO epochs on the parked hours."""
    t = trajectory
    adv = ac.advantages(t.rewards, t.values, t.active, hyper)
    mask = t.active
    return ac.update(params, optimiser, t.obs[mask], t.actions[mask], t.logp[mask], adv[mask],
                     (adv + t.values)[mask], hyper)


def fedavg(models: Sequence[ac.Params]) -> ac.Params:
    """w^G = (1/N) Σ_n w^n (eq. 4.19)."""
    return {key: np.mean([m[key] for m in models], axis=0) for key in models[0]}


@dataclass(frozen=True)
class Setup:
    """One training run."""

    evs: int = 5
    windows: int = 150
    """24-hour windows (federation rounds)."""
    stays_per_window: int = 8
    """Simulated stays each EV learns from per window (its local data set)."""
    federated: bool = True
    use_delta: bool = True
    beta_ppm: int = 50_000
    """β of eq. 4.20: 5 % of each EV's profit goes to the mLAG (the thesis leaves β to the EVs)."""


@dataclass(frozen=True)
class Training:
    models: tuple[ac.Params, ...]
    """Each EV's final model (all the same when federated)."""
    aggregators: tuple[int, ...]
    """The mLAG of every window."""
    mining_rewards: tuple[int, ...]
    """ℳ_r of every window, in hundredths of a cent."""
    mean_reward: tuple[float, ...]
    """Mean episode reward per window (the learning curve of Figs. 4.6, 4.11)."""


def train(setup: Setup, seed: int, hyper: ac.Hyper = ac.Hyper(),
          on_window: Callable[[], None] | None = None) -> Training:
    rng = np.random.default_rng(seed)
    chain_seed = seed.to_bytes(32, "big")
    start = ac.init_params(OBSERVATION_SIZE, len(ACTIONS), hyper.hidden, rng)
    models = [dict(start) for _ in range(setup.evs)]
    optimisers = [ac.Adam(hyper.learning_rate) for _ in range(setup.evs)]
    ev_rngs = [np.random.default_rng([seed, ev]) for ev in range(setup.evs)]
    book = open_book(setup.evs)
    aggregators, rewards, curve = [], [], []
    for window in range(setup.windows):
        scores, profits, returns = [], [], []
        for ev in range(setup.evs):
            days = sample_days(setup.stays_per_window, ev_rngs[ev])
            trajectory = rollout(models[ev], days, ev_rngs[ev], setup.use_delta)
            models[ev] = local_update(models[ev], optimisers[ev], trajectory, hyper)
            scores.append(int(round(trajectory.score.sum() / days.count * 1000)))  # Wh per stay (4.17)
            profits.append(int(round(trajectory.profit.sum() / days.count * 100)))
            returns.append(trajectory.rewards.sum() / days.count)
        mlag = choose_aggregator(scores, derive_seed(chain_seed, window))
        book, fee = charge_fees(book, profits, setup.beta_ppm)
        for ev in range(setup.evs):
            book, _ = pay_fee(book, ev, book.owed[ev])
        if setup.federated:
            shared = fedavg(models)
            models = [dict(shared) for _ in range(setup.evs)]
        aggregators.append(mlag)
        rewards.append(fee)
        curve.append(float(np.mean(returns)))
        if on_window is not None:
            on_window()
    return Training(tuple(models), tuple(aggregators), tuple(rewards), tuple(curve))


@dataclass(frozen=True)
class Evaluation:
    """Greedy play of each EV's model on the same test stays."""

    profit: float
    """Mean arbitrage profit per stay, ¢."""
    sold_by_band: tuple[float, float, float]
    """kWh sold per stay in (off, mid, on)-peak hours."""
    bought_by_band: tuple[float, float, float]
    parked_by_band: tuple[float, float, float]
    """Hours parked per stay in each band: Table 4.1's stays (about 7:00 to 18:00) hold half
    an off-peak hour on average, which caps what an EV can buy off-peak."""
    score_by_band: tuple[float, float, float]
    """Mean PoSOC hour score (eq. 4.1, kWh) of a parked hour in each band (Fig. 4.7c)."""
    score_discharge_correlation: float
    """Correlation of a parked hour's score with the energy sold in it."""


def evaluate(models: Sequence[ac.Params], test_days: Days) -> Evaluation:
    runs = [rollout(params, test_days, np.random.default_rng(0), greedy=True) for params in models]
    active = np.concatenate([t.active for t in runs], axis=1)
    energy = np.concatenate([t.energy for t in runs], axis=1)
    score = np.concatenate([t.score for t in runs], axis=1)
    in_band = [np.broadcast_to((BAND_OF_HOUR == b)[:, None], active.shape) & active for b in range(3)]
    stays = active.shape[1]
    sold, bought = np.clip(-energy, 0, None), np.clip(energy, 0, None)
    return Evaluation(
        float(np.concatenate([t.profit.sum(axis=0) for t in runs]).mean()),
        tuple(float(sold[m].sum() / stays) for m in in_band),
        tuple(float(bought[m].sum() / stays) for m in in_band),
        tuple(float(m.sum() / stays) for m in in_band),
        tuple(float(score[m].mean()) if m.any() else 0.0 for m in in_band),
        float(np.corrcoef(score[active], sold[active])[0, 1]),
    )


def to_model(params: ac.Params, bits: int = DEFAULT_BITS) -> Model:
    """An agent's float parameters as the fixed-point model the chain's FedAvg averages
    (`consensus.rules.fedavg`), tensors in name order, each weight × 2^bits rounded to the nearest."""
    names = sorted(params)
    if not names:
        raise ModelError("a model has at least one tensor")
    layout = tuple((name, tuple(int(d) for d in np.shape(params[name]))) for name in names)
    flat = np.concatenate([np.ravel(np.asarray(params[name], dtype=float)) for name in names])
    scaled = np.rint(flat * float(1 << bits))
    if not np.all(np.abs(scaled) <= MAX_MAGNITUDE):
        raise ModelError(f"a weight is too large for {bits} fraction bits")
    return Model(layout, bits, tuple(int(v) for v in scaled))


def from_model(model: Model) -> ac.Params:
    """The model's parameters as floats, by name (what an agent loads)."""
    out, offset = {}, 0
    values = np.asarray(model.values, dtype=np.int64)
    for name, dims in model.layout:
        size = int(np.prod(dims, dtype=np.int64)) if dims else 1
        out[name] = (values[offset:offset + size].astype(float) / float(1 << model.bits)).reshape(dims)
        offset += size
    return out
