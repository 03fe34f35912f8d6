"""Deterministic weighted random sampling (thesis eq. 3.16, Algorithm 2; eq. 4.18).

PoEG and PoSOC pick the next producer with probability proportional to a proof
score. Every node must draw the same index from the same chain-derived seed, so
the draw uses only integers and keccak-256: no floats, no `random`, no clock.
"""
from __future__ import annotations

from collections.abc import Sequence

from vm.crypto import keccak256

_SPACE = 1 << 256


def derive_seed(seed: bytes, label: int) -> bytes:
    """A fresh seed for the `label`-th draw from one chain seed (e.g. a slot or a reselection round)."""
    if label < 0:
        raise ValueError("label must be non-negative")
    return keccak256(seed + label.to_bytes(32, "big"))


def uniform_below(bound: int, seed: bytes) -> int:
    """An unbiased integer in [0, bound): rejection sampling over keccak(seed ‖ counter),
    so no residue class is favoured by the 2^256 mod bound remainder."""
    if bound <= 0:
        raise ValueError("bound must be positive")
    limit = _SPACE - _SPACE % bound
    counter = 0
    while True:
        draw = int.from_bytes(keccak256(seed + counter.to_bytes(8, "big")), "big")
        if draw < limit:
            return draw % bound
        counter += 1


def weighted_choice(weights: Sequence[int], seed: bytes) -> int:
    """Index i drawn with probability w_i / Σ w (eq. 3.16): weights are non-negative
    integers (fixed-point proof scores) with a positive total; zero weights are never drawn."""
    for weight in weights:
        if type(weight) is not int:
            raise TypeError(f"weights must be int, got {type(weight).__name__}")
        if weight < 0:
            raise ValueError("weights must be non-negative")
    total = sum(weights)
    if total == 0:
        raise ValueError("at least one weight must be positive")
    point = uniform_below(total, seed)
    for index, weight in enumerate(weights):
        if point < weight:
            return index
        point -= weight
    raise AssertionError("unreachable: point < total")


def shuffled(count: int, seed: bytes) -> list[int]:
    """A permutation of range(count) by Fisher–Yates with `uniform_below` draws: the same
    order on every node (used for sampled Shapley shares in integer form)."""
    order = list(range(count))
    for k in range(count - 1, 0, -1):
        swap = uniform_below(k + 1, derive_seed(seed, k))
        order[k], order[swap] = order[swap], order[k]
    return order
