"""The PoW mining model of the elecoin paper (paper 000, §II-B.1, eq. 1).

Solving the hash puzzle is modelled as a Poisson process, so an edge server
holding a share β_j of the network's hash rate wins a block with probability
ρ_j = β_j·e^(−λ·l·s): the larger the block, the longer it takes to propagate
and the likelier it is to be orphaned. The winner earns a fixed reward R_f plus
a performance reward r·s for the s transactions it packs, hence
U_j^m = (R_f + r·s)·ρ_j.

This is the float model a simulation or a pricing game reasons with; the PoW
engine pays integer rewards and is checked against these shares statistically.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MiningParams:
    """The block-reward and propagation constants of eq. 1 (defaults: paper 000, §IV-A)."""

    fixed_reward: float = 200.0
    """R_f: the reward for any mined block, in elecoins."""
    reward_per_tx: float = 3.0
    """r: the performance reward per transaction packed, in elecoins."""
    block_size: float = 200.0
    """s: transactions per block (every block is assumed equally full)."""
    propagation: float = 0.01
    """λ: the blockchain's propagation factor."""
    puzzle: float = 1.0
    """l: the evaluation metric of the puzzle."""


def hash_shares(hash_rates: Sequence[float]) -> tuple[float, ...]:
    """β_j = α_j / Σα: each edge server's share of the network's hash rate."""
    if not hash_rates or any(alpha < 0 for alpha in hash_rates) or sum(hash_rates) <= 0:
        raise ValueError("hash rates must be non-negative with a positive total")
    total = math.fsum(hash_rates)
    return tuple(alpha / total for alpha in hash_rates)


def block_reward(params: MiningParams = MiningParams()) -> float:
    """R_f + R_p with R_p = r·s: what the winner of one block earns."""
    return params.fixed_reward + params.reward_per_tx * params.block_size


def win_probability(share: float, params: MiningParams = MiningParams()) -> float:
    """ρ_j = β_j·e^(−λ·l·s): the chance that server j mines the block and it survives propagation."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("a hash share lies in [0, 1]")
    return share * math.exp(-params.propagation * params.puzzle * params.block_size)


def mining_utility(share: float, params: MiningParams = MiningParams()) -> float:
    """U_j^m = (R_f + r·s)·ρ_j (eq. 1): the expected mining reward per block."""
    return block_reward(params) * win_probability(share, params)


def optimal_block_size(params: MiningParams = MiningParams()) -> float:
    """The block size maximising eq. 1: d/ds[(R_f + r·s)·e^(−λls)] = 0 gives
    s* = 1/(λl) − R_f/r (never below zero). Bigger blocks pay more per block but
    propagate slower, so the miner packs neither everything nor nothing."""
    return max(0.0, 1.0 / (params.propagation * params.puzzle) - params.fixed_reward / params.reward_per_tx)
