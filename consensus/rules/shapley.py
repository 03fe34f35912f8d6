"""Shapley value (thesis eq. 3.3) of an integer game, for sharing the mining reward inside the
winning coalition exactly: n!·φ_i with no division, marginal totals over given player orders,
and the split of an integer reward by integer weights, so validators never disagree by a
rounding. Players are 0..n−1 and a coalition is a bitmask. The float forms (φ_i itself and
the sampled estimate with its Hoeffding bound) are in `market.economics.shapley`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

EXACT_MAX_PLAYERS = 10
"""2^10 = 1,024 coalition worths, each an LP in the coalition game: about a second."""


def weighted_marginals(players: int, worths: Sequence) -> list:
    """Σ_T |T|!(n−|T|−1)! · [v(T ∪ {i}) − v(T)] for each i: n! times eq. 3.3, in the worths' own arithmetic."""
    weight = [math.factorial(k) * math.factorial(players - k - 1) for k in range(players)]
    totals = []
    for i in range(players):
        bit = 1 << i
        totals.append(sum(weight[m.bit_count()] * (worths[m | bit] - worths[m])
                          for m in range(1 << players) if not m & bit))
    return totals


def shapley_exact_int(players: int, worth: Callable[[int], int]) -> list[int]:
    """n!·φ_i for an integer game, exactly (no division, so every node gets the same integers)."""
    if players > EXACT_MAX_PLAYERS:
        raise ValueError(f"exact Shapley is limited to {EXACT_MAX_PLAYERS} players")
    worths = [worth(m) for m in range(1 << players)]
    if any(type(w) is not int for w in worths):
        raise TypeError("integer Shapley needs integer worths")
    return weighted_marginals(players, worths)


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
