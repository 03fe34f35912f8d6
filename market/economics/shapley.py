"""Shapley value (thesis eq. 3.3) for sharing the mining reward inside the winning coalition.

Players are 0..n−1 and a coalition is a bitmask. Exact computation needs the worth of all
2^n coalitions, so it is used up to EXACT_MAX_PLAYERS; beyond, permutation sampling gives
an unbiased estimate with a Hoeffding bound. These are the float forms; the integer form,
n!·φ_i exactly, with which a validator splits an integer reward, is `rules.shapley`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from consensus.rules.shapley import EXACT_MAX_PLAYERS, marginal_totals, weighted_marginals


def shapley_exact(players: int, worth: Callable[[int], float]) -> np.ndarray:
    """φ_i of eq. 3.3 for the game `worth` (a function of the coalition bitmask, worth(0) = 0)."""
    if players > EXACT_MAX_PLAYERS:
        raise ValueError(f"exact Shapley is limited to {EXACT_MAX_PLAYERS} players; use shapley_sampled")
    worths = [float(worth(m)) for m in range(1 << players)]
    return np.asarray(weighted_marginals(players, worths)) / math.factorial(players)


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


def shapley_sampled(players: int, worth: Callable[[int], float], value_range: float, samples: int,
                    rng: np.random.Generator, alpha: float = 0.05) -> ShapleyEstimate:
    """Mean marginal contribution over `samples` random player orders. `value_range` bounds the
    width of the interval every marginal contribution lies in (for the Hoeffding bound)."""
    orders = (rng.permutation(players) for _ in range(samples))
    totals = np.asarray(marginal_totals(players, lambda m: float(worth(m)), orders), dtype=float)
    return ShapleyEstimate(totals / samples, samples,
                           hoeffding_half_width(value_range, samples, players, alpha), 1.0 - alpha)
