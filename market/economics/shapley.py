"""Shapley value (thesis eq. 3.3) for sharing the mining reward inside the winning coalition.

Players are 0..n−1 and a coalition is a bitmask. Exact computation needs the worth of all
2^n coalitions, so it is used up to EXACT_MAX_PLAYERS; beyond, permutation sampling gives
an unbiased estimate with a Hoeffding bound. The integer form returns n!·φ_i exactly, so a
validator can split an integer reward with no rounding disagreement.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

EXACT_MAX_PLAYERS = 10
"""2^10 = 1,024 coalition worths, each an LP in the coalition game: about a second."""


def _weighted_marginals(players: int, worths: Sequence) -> list:
    """Σ_T |T|!(n−|T|−1)! · [v(T ∪ {i}) − v(T)] for each i: n! times eq. 3.3, in the worths' own arithmetic."""
    weight = [math.factorial(k) * math.factorial(players - k - 1) for k in range(players)]
    totals = []
    for i in range(players):
        bit = 1 << i
        totals.append(sum(weight[m.bit_count()] * (worths[m | bit] - worths[m])
                          for m in range(1 << players) if not m & bit))
    return totals


def shapley_exact(players: int, worth: Callable[[int], float]) -> np.ndarray:
    """φ_i of eq. 3.3 for the game `worth` (a function of the coalition bitmask, worth(0) = 0)."""
    if players > EXACT_MAX_PLAYERS:
        raise ValueError(f"exact Shapley is limited to {EXACT_MAX_PLAYERS} players; use shapley_sampled")
    worths = [float(worth(m)) for m in range(1 << players)]
    return np.asarray(_weighted_marginals(players, worths)) / math.factorial(players)


def shapley_exact_int(players: int, worth: Callable[[int], int]) -> list[int]:
    """n!·φ_i for an integer game, exactly (no division, so every node gets the same integers)."""
    if players > EXACT_MAX_PLAYERS:
        raise ValueError(f"exact Shapley is limited to {EXACT_MAX_PLAYERS} players")
    worths = [worth(m) for m in range(1 << players)]
    if any(type(w) is not int for w in worths):
        raise TypeError("integer Shapley needs integer worths")
    return _weighted_marginals(players, worths)


@dataclass(frozen=True)
class ShapleyEstimate:
    """Sampled Shapley values with a simultaneous error bound."""

    values: np.ndarray
    samples: int
    """Random permutations used."""
    half_width: float
    """ε: with probability ≥ `confidence`, every |φ̂_i − φ_i| ≤ ε."""
    confidence: float


def hoeffding_half_width(value_range: float, samples: int, players: int, alpha: float) -> float:
    """ε = R·√(ln(2n/α) / 2K): Hoeffding for the mean of K marginals lying in an interval of
    width R, with a union bound over the n players, so all n estimates hold at once w.p. 1−α."""
    return value_range * math.sqrt(math.log(2 * players / alpha) / (2 * samples))


def samples_for(value_range: float, epsilon: float, players: int, alpha: float) -> int:
    """Permutations needed for `hoeffding_half_width` to be at most ε."""
    return math.ceil(value_range ** 2 * math.log(2 * players / alpha) / (2 * epsilon ** 2))


def marginal_totals(players: int, worth: Callable[[int], float | int], orders: Iterable[Sequence[int]]) -> list:
    """Σ over the given player orders of each player's marginal contribution, in the worth's
    own arithmetic. Each order's marginals telescope to worth(all), so totals/K is exactly efficient."""
    totals = [0] * players
    cache = {0: worth(0)}
    for order in orders:
        mask = 0
        for i in order:
            before = cache[mask]
            mask |= 1 << int(i)
            if mask not in cache:
                cache[mask] = worth(mask)
            totals[int(i)] += cache[mask] - before
    return totals


def shapley_sampled(players: int, worth: Callable[[int], float], value_range: float, samples: int,
                    rng: np.random.Generator, alpha: float = 0.05) -> ShapleyEstimate:
    """Mean marginal contribution over `samples` random player orders. `value_range` bounds the
    width of the interval every marginal contribution lies in (for the Hoeffding bound)."""
    orders = (rng.permutation(players) for _ in range(samples))
    totals = np.asarray(marginal_totals(players, lambda m: float(worth(m)), orders), dtype=float)
    return ShapleyEstimate(totals / samples, samples,
                           hoeffding_half_width(value_range, samples, players, alpha), 1.0 - alpha)


def split_reward(total: int, weights: Sequence[int]) -> list[int]:
    """Divide an integer reward in proportion to non-negative integer weights (n!·φ_i): floors
    first, then the remaining units to the largest remainders, ties to the lower index."""
    weight_sum = sum(weights)
    if total < 0 or weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("need a non-negative total and non-negative weights with a positive sum")
    shares = [total * w // weight_sum for w in weights]
    order = sorted(range(len(weights)), key=lambda k: (-(total * weights[k] % weight_sum), k))
    for k in order[:total - sum(shares)]:
        shares[k] += 1
    return shares
