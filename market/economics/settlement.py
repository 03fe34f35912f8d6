"""One PoEG settlement slot (Algorithm 3, lines 30–38): draw the miner coalition, size the
mining reward, share it by Shapley value and compute every prosumer's payoff.

`propose` works in floats on the LP's plans; `recompute` does the same in integers (Wh,
floored products, exact Shapley numerators or keccak-seeded player orders) from the plans
floored to whole Wh, which is what a validator checks the proposal against. Both draw the
miner from the integer coalition scores, so they always agree on who mines.

The reward is shared by the Shapley value of the coalition game inside the miner coalition,
v(T) = 𝒫𝒮_T of T's optimal plan (eqs. 3.5, 3.9): a member's share reflects the proof score
it brings, as §3.4.2 describes (P5 earning more than P8).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic

import numpy as np

from consensus.sampling import derive_seed, shuffled
from market.economics.coalition import CoalitionGame, Formation
from market.economics.line_loss import E, IntLosses, Losses
from market.economics.poeg import (Plan, coalition_score, member_savings, mining_reward, payoff,
                                   select_miner, to_wh)
from market.economics.shapley import (EXACT_MAX_PLAYERS, marginal_totals, samples_for, shapley_exact,
                                      shapley_exact_int, shapley_sampled, split_reward)

DELTA_PPM = 100_000
"""δ_t = 0.1, the thesis's starting value (§3.3.2)."""
PRICE_PER_KWH = 25
"""p_t in base units per kWh (e.g. cents): the thesis fixes no price; 25 is a typical
Australian retail tariff of the Ausgrid data's period."""
SHAPLEY_EPSILON_KWH = 0.01
"""Target error of a sampled Shapley value (10 Wh), at 95 % confidence."""


@dataclass(frozen=True)
class Settlement(Generic[E]):
    """What the slot pays, in one arithmetic."""

    coalition_scores: tuple[int, ...]
    """𝒫𝒮_S in Wh of every coalition of the partition (the miner-draw weights)."""
    miner: int
    """Index of the drawn coalition in the partition."""
    reward: E
    """ℳ_r (eq. 3.23)."""
    shares: dict[int, E]
    """(ℳ_r)_i of each miner-coalition member."""
    payoffs: tuple[E, ...]
    """x_i of every prosumer (eq. 3.22)."""
    shapley_error: float
    """Bound on each share's sampling error (0 when exact), in the reward's unit."""


def _members_of(coalition: tuple[int, ...], mask: int) -> list[int]:
    return [m for bit, m in enumerate(coalition) if mask >> bit & 1]


def integer_plans(game: CoalitionGame, formation: Formation) -> tuple[Plan[int], ...]:
    """The formation's plans floored to whole Wh: what goes on chain."""
    return tuple(to_wh(s.plan) for s in formation.solutions)


def _draw(game: CoalitionGame, formation: Formation, seed: bytes) -> tuple[tuple[int, ...], int]:
    ints = IntLosses(game.community, game.losses.model)
    scores = tuple(coalition_score(plan, ints) for plan in integer_plans(game, formation))
    return scores, select_miner(scores, seed)


def _payoffs(plans: tuple[Plan[E], ...], losses: Losses[E], shares: dict[int, E],
             price_per_kwh: int) -> tuple[E, ...]:
    savings = {i: s for plan in plans for i, s in member_savings(plan, losses).items()}
    zero = losses.energy(0)
    return tuple(payoff(savings[i], shares.get(i, zero), price_per_kwh, losses) for i in range(len(savings)))


def _marginal_range(game: CoalitionGame, coalition: tuple[int, ...]) -> float:
    """Every marginal contribution of i lies in [𝒫𝒮_i, 𝒫𝒮_i + |E_i^bal|·max_j g_ij⁺]: adding i
    never lowers G (i can stay idle), and raises it at most by i's dual price times its
    balance. The width of the widest such interval is the Hoeffding range."""
    members = list(coalition)
    best_gain = np.clip(game.gain[np.ix_(members, members)], 0.0, None).max(axis=1)
    return float((np.abs(game.balance[members]) * best_gain).max())


def propose(game: CoalitionGame, formation: Formation, seed: bytes, rng: np.random.Generator,
            delta_ppm: int = DELTA_PPM, price_per_kwh: int = PRICE_PER_KWH) -> Settlement[float]:
    """The miner's float settlement: exact Shapley up to EXACT_MAX_PLAYERS members, else sampled
    with enough permutations for SHAPLEY_EPSILON_KWH at 95 % confidence."""
    losses = game.losses
    scores, miner = _draw(game, formation, seed)
    reward = mining_reward(sum(s.gain for s in formation.solutions), delta_ppm, losses)
    coalition = formation.partition[miner]
    worth: Callable[[int], float] = lambda mask: sum(game.solve(_members_of(coalition, mask)).scores.values())
    if len(coalition) <= EXACT_MAX_PLAYERS:
        phi, error = shapley_exact(len(coalition), worth), 0.0
    else:
        width = _marginal_range(game, coalition)
        estimate = shapley_sampled(len(coalition), worth, width,
                                   samples_for(width, SHAPLEY_EPSILON_KWH, len(coalition), 0.05), rng)
        phi, error = estimate.values, estimate.half_width
    total = worth((1 << len(coalition)) - 1)
    shares = {m: reward * float(phi[k]) / total for k, m in enumerate(coalition)}
    plans = tuple(s.plan for s in formation.solutions)
    return Settlement(scores, miner, reward, shares, _payoffs(plans, losses, shares, price_per_kwh),
                      error * reward / total)


def recompute(game: CoalitionGame, formation: Formation, seed: bytes, delta_ppm: int = DELTA_PPM,
              price_per_kwh: int = PRICE_PER_KWH, samples: int = 0) -> Settlement[int]:
    """The validator's integer settlement from the Wh plans. Shares use exact n!·φ_i up to
    EXACT_MAX_PLAYERS members; beyond, the marginal totals over `samples` player orders
    shuffled from the chain seed (so every validator samples the same orders)."""
    losses = IntLosses(game.community, game.losses.model)
    plans = integer_plans(game, formation)
    scores, miner = _draw(game, formation, seed)
    reward = mining_reward(sum(sum(member_savings(p, losses).values()) for p in plans), delta_ppm, losses)
    coalition = formation.partition[miner]
    worth: Callable[[int], int] = lambda mask: coalition_score(
        to_wh(game.solve(_members_of(coalition, mask)).plan), losses)
    if len(coalition) <= EXACT_MAX_PLAYERS:
        weights = shapley_exact_int(len(coalition), worth)
    else:
        if samples <= 0:
            raise ValueError("a coalition this large needs a positive number of sampled orders")
        orders = (shuffled(len(coalition), derive_seed(seed, k + 1)) for k in range(samples))
        weights = marginal_totals(len(coalition), worth, orders)
    shares = dict(zip(coalition, split_reward(reward, weights)))
    return Settlement(scores, miner, reward, shares, _payoffs(plans, losses, shares, price_per_kwh), 0.0)
