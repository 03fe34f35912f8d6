"""One PoEG settlement slot (Algorithm 3, lines 30–38) as the proposer computes it, in floats on
the LP's plans: draw the miner coalition, size the mining reward, share it by Shapley value and
compute every prosumer's payoff. `recompute` hands the same slot, with the plans floored to whole
Wh and the sub-coalition worths from the same LP, to the integer check of
`consensus.rules.settlement`, which is what a validator runs. Both draw the miner from
the integer coalition scores, so they always agree on who mines.

The reward is shared by the Shapley value of the coalition game inside the miner coalition,
v(T) = 𝒫𝒮_T of T's optimal plan (eqs. 3.5, 3.9): a member's share reflects the proof score
it brings, as §3.4.2 describes (P5 earning more than P8).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from market.economics.coalition import CoalitionGame, Formation
from consensus.rules import settlement as rules
from consensus.rules.line_loss import IntLosses
from consensus.rules.poeg import Plan, coalition_score, mining_reward, to_wh
from consensus.rules.settlement import DELTA_PPM, PRICE_PER_KWH, Settlement, members_of
from consensus.rules.shapley import EXACT_MAX_PLAYERS
from market.economics.shapley import samples_for, shapley_exact, shapley_sampled

SHAPLEY_EPSILON_KWH = 0.01
"""Target error of a sampled Shapley value (10 Wh), at 95 % confidence."""


def integer_plans(game: CoalitionGame, formation: Formation) -> tuple[Plan[int], ...]:
    """The formation's plans floored to whole Wh: what goes on chain."""
    return tuple(to_wh(s.plan) for s in formation.solutions)


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
    scores, miner = rules.draw_miner(integer_plans(game, formation), IntLosses(game.community, losses.model), seed)
    reward = mining_reward(sum(s.gain for s in formation.solutions), delta_ppm, losses)
    coalition = formation.partition[miner]
    worth: Callable[[int], float] = lambda mask: sum(game.solve(members_of(coalition, mask)).scores.values())
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
    return Settlement(scores, miner, reward, shares, rules.payoffs(plans, losses, shares, price_per_kwh),
                      error * reward / total)


def recompute(game: CoalitionGame, formation: Formation, seed: bytes, delta_ppm: int = DELTA_PPM,
              price_per_kwh: int = PRICE_PER_KWH, samples: int = 0) -> Settlement[int]:
    """The validator's integer settlement of this formation (`rules.settlement.recompute`), with
    each sub-coalition's worth the integer score of its LP plan floored to whole Wh."""
    losses = IntLosses(game.community, game.losses.model)
    worth: Callable[[list[int]], int] = lambda members: coalition_score(to_wh(game.solve(members).plan), losses)
    return rules.recompute(losses, integer_plans(game, formation), seed, worth, delta_ppm, price_per_kwh, samples)
