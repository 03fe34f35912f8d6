"""The elecoin pricing game of paper 000 (§II–III, eqs. 1–7).

One edge server (the leader) posts a unit elecoin price p; each prosumer i (a
follower) answers with the demand x_i that maximises its utility (eq. 3)

    U_i^p = θ·ln(x_i·w_i/Q + 1) − η·x_i·p,

which is concave, so the answer is the stationary point x_i* = θ/(ηp) − Q/w_i
(eq. 4) clamped to [x_min, x_max]. The server earns its mining reward (eq. 1)
plus its sales minus its service cost (eq. 2)

    U^e = U^m + Σ p_i·x_i − k·(Σ x_i/Q + e_c).

Writing a = θ/η, b_i = Q/w_i and c = k/Q, the server's profit from prosumer i
at the follower's answer is (p − c)·x_i(p). Between the prices where some
demand hits a bound, the set of unclamped prosumers I and the clamped demand
total X are fixed, the profit is Σ_I (a + c·b_i) − |I|·a·c/p − p·Σ_I b_i +
(p − c)·X, strictly concave (eq. 7) with its stationary point at
p = √(|I|·a·c / (Σ_I b_i − X)). So the leader's optimum is found exactly by
checking that point and the ends of every piece; with no demand clamped it is
eq. 6's closed form p* = √(k·N·θ / (η·Q²·Σ 1/w_i)). Price discrimination is
the same problem solved for each prosumer alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from consensus.pow_model import MiningParams, mining_utility

DEFAULT_THETA = 1000.0
"""θ: the prosumers' service-revenue conversion factor (unstated in paper 000)."""
DEFAULT_MEAN_INTENTION = 0.0039
"""w̄: the prosumers' mean intention (unstated in paper 000)."""
DEFAULT_SPREAD = 0.04
"""How far the prosumers' intentions differ (±4 % in Q/w_i, see `spread_intentions`)."""


@dataclass(frozen=True)
class Market:
    """One edge server selling elecoins to N prosumers (paper 000, §II-B and §IV-A).

    The paper gives every constant but θ, w_i and e_c. We take θ = 1000 and
    intentions around w̄ = 0.0039 because the paper's only evidence of where its
    equilibrium lies is its learners' action sets, prices 10–19 and demands
    20–50: with these values the uniform Stackelberg price is 17.0 and the
    demands 36–48, inside those sets, and this interior optimum earns the server
    21 % more than the corner the lower demand bound creates (p = 19 with the
    least keen prosumers forced up to x_min); with intentions spread ±15 % or
    more, that corner wins instead. The price landing on one
    of the paper's integer price actions is deliberate: demand moves by
    θ/(ηp²) ≈ 11.5 elecoins per unit of price, so against an equilibrium between
    two grid prices no learner restricted to that grid could come within 2 % of
    the analytic demands. e_c = 10 is only a constant cost in eq. 2 and moves no
    decision. All three stay parameters.
    """

    intentions: tuple[float, ...]
    """w_i: each prosumer's intention to use electricity services."""
    theta: float = DEFAULT_THETA
    """θ: conversion factor of the prosumers' service revenue (eq. 3)."""
    eta: float = 0.3
    """η: conversion factor of the prosumers' payment (eq. 3)."""
    unit_price: float = 0.6
    """Q: the unit electricity price, tied to the utility grid's price."""
    k: float = 8.0
    """k: the server's cost conversion factor (eq. 2)."""
    server_consumption: float = 10.0
    """e_c: the edge server's own electricity consumption (eq. 2)."""
    demand_bounds: tuple[float, float] = (20.0, 50.0)
    """[x_min, x_max]: the elecoins a prosumer may buy (the paper's demand actions)."""
    price_bounds: tuple[float, float] = (10.0, 19.0)
    """[p_min, p_max]: the prices the server may post (the paper's price actions)."""
    mining: MiningParams = MiningParams()
    """R_f, r, s, λ, l of the mining term (eq. 1)."""
    hash_share: float = 1.0
    """β_j: the server's hash-rate share; 1 since the paper's setting has M = 1."""

    @property
    def offsets(self) -> np.ndarray:
        """b_i = Q/w_i: the demand each prosumer gives up per unit of θ/(ηp) (eq. 4)."""
        return self.unit_price / np.asarray(self.intentions, dtype=float)

    @property
    def unit_cost(self) -> float:
        """c = k/Q: what one elecoin sold costs the server in service electricity (eq. 2)."""
        return self.k / self.unit_price


@dataclass(frozen=True)
class ActionGrid:
    """The learners' actions: prices 10–19 and demands 20–50 (paper 000, §IV-A)."""

    prices: tuple[float, ...] = tuple(float(p) for p in range(10, 20))
    demands: tuple[float, ...] = tuple(float(x) for x in range(20, 51))


@dataclass(frozen=True)
class Outcome:
    """Prices and demands played, with what they pay each side."""

    prices: tuple[float, ...]
    """The price each prosumer pays (all equal under uniform pricing)."""
    demands: tuple[float, ...]
    """Each prosumer's elecoin demand x_i."""
    server_utility: float
    """U^e (eq. 2)."""
    prosumer_utilities: tuple[float, ...]
    """U_i^p (eq. 3)."""


def spread_intentions(n: int, spread: float = DEFAULT_SPREAD,
                      mean: float = DEFAULT_MEAN_INTENTION) -> tuple[float, ...]:
    """N diverse intentions: w_i = w̄/(1 + spread·u_i) with u_i evenly spaced in
    [−1, 1], so Q/w_i is spread evenly by ±spread around Q/w̄ and its mean (the
    only thing the uniform price depends on, eq. 6) stays that of w̄ for every N."""
    if n < 1 or not 0.0 <= spread < 1.0:
        raise ValueError("need at least one prosumer and a spread in [0, 1)")
    positions = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    return tuple(float(mean / (1.0 + spread * u)) for u in positions)


def paper_market(n: int = 8, spread: float = DEFAULT_SPREAD, **overrides: float) -> Market:
    """The §IV-A setting (N = 8, M = 1, k = 8, Q = 0.6, η = 0.3, …) with our θ and w_i."""
    return Market(intentions=spread_intentions(n, spread), **overrides)


def prosumer_utility(demand: np.ndarray | float, price: np.ndarray | float,
                     market: Market) -> np.ndarray:
    """U_i^p = θ·ln(x_i·w_i/Q + 1) − η·x_i·p (eq. 3), for every prosumer along the last axis."""
    demand = np.asarray(demand, dtype=float)
    price = np.asarray(price, dtype=float)
    return market.theta * np.log1p(demand / market.offsets) - market.eta * demand * price


def best_response(price: np.ndarray | float, market: Market, clamp: bool = True) -> np.ndarray:
    """x_i* = θ/(ηp) − Q/w_i (eq. 4). U_i^p is concave (eq. 5), so clamping the
    stationary point to [x_min, x_max] is the exact constrained best response."""
    demand = market.theta / (market.eta * np.asarray(price, dtype=float)) - market.offsets
    return np.clip(demand, *market.demand_bounds) if clamp else demand


def server_fixed_utility(market: Market) -> float:
    """U^m − k·e_c: the part of eq. 2 that no price or demand moves."""
    return mining_utility(market.hash_share, market.mining) - market.k * market.server_consumption


def server_utility(prices: np.ndarray | float, demands: np.ndarray, market: Market) -> np.ndarray:
    """U^e = U^m + Σ p_i·x_i − k·(Σ x_i/Q + e_c) (eq. 2), summed over the last axis."""
    prices = np.asarray(prices, dtype=float)
    demands = np.asarray(demands, dtype=float)
    return server_fixed_utility(market) + np.sum((prices - market.unit_cost) * demands, axis=-1)


def leader_utility(price: float, market: Market, clamp: bool = True) -> float:
    """U^e when the prosumers answer a uniform price with eq. 4; without the
    clamp this is eq. 6, whose second derivative is eq. 7."""
    return float(server_utility(price, best_response(price, market, clamp), market))


def interior_uniform_price(market: Market) -> float:
    """Eq. 6's maximiser p* = √(k·N·θ / (η·Q²·Σ 1/w_i)), ignoring every bound."""
    a = market.theta / market.eta
    return math.sqrt(len(market.intentions) * a * market.unit_cost / float(np.sum(market.offsets)))


def _best_group_price(offsets: np.ndarray, market: Market) -> float:
    """The price maximising Σ (p − c)·x_i(p) over prosumers sharing it, exactly:
    the profit is concave between the prices where a demand meets a bound, so
    its maximum is a piece's stationary point or a piece's end (module docstring)."""
    a, c = market.theta / market.eta, market.unit_cost
    (x_min, x_max), (p_min, p_max) = market.demand_bounds, market.price_bounds
    kinks = np.concatenate([a / (x_max + offsets), a / (x_min + offsets)])
    ends = np.unique(np.clip(np.concatenate([[p_min, p_max], kinks]), p_min, p_max))
    candidates = list(ends)
    for low, high in zip(ends[:-1], ends[1:]):
        raw = a / (0.5 * (low + high)) - offsets
        interior = (raw > x_min) & (raw < x_max)
        slope_denominator = offsets[interior].sum() - np.clip(raw[~interior], x_min, x_max).sum()
        if interior.any() and slope_denominator > 0:
            stationary = math.sqrt(interior.sum() * a * c / slope_denominator)
            if low < stationary < high:
                candidates.append(stationary)
    profits = [float(np.sum((p - c) * np.clip(a / p - offsets, x_min, x_max))) for p in candidates]
    return float(candidates[int(np.argmax(profits))])


def outcome(prices: np.ndarray | float, demands: np.ndarray, market: Market) -> Outcome:
    """Both sides' utilities (eqs. 2–3) when prosumer i pays prices[i] for demands[i]."""
    prices = np.broadcast_to(np.asarray(prices, dtype=float), np.shape(demands))
    return Outcome(prices=tuple(float(p) for p in prices), demands=tuple(float(x) for x in demands),
                   server_utility=float(server_utility(prices, demands, market)),
                   prosumer_utilities=tuple(float(u) for u in prosumer_utility(demands, prices, market)))


def uniform_equilibrium(market: Market) -> Outcome:
    """The Stackelberg equilibrium when the server posts one price to everyone (Theorem 2)."""
    price = _best_group_price(market.offsets, market)
    prices = np.full(len(market.intentions), price)
    return outcome(prices, best_response(prices, market), market)


def discriminated_equilibrium(market: Market) -> Outcome:
    """The equilibrium when the server prices each prosumer separately: eq. 2 is
    a sum over prosumers, so each price solves the one-prosumer problem, and
    p_i* = √(k·θ·w_i/(η·Q²)) wherever no bound binds."""
    prices = np.array([_best_group_price(offsets[None], market) for offsets in market.offsets])
    return outcome(prices, best_response(prices, market), market)


def grid_equilibrium(market: Market, grid: ActionGrid = ActionGrid(), discriminate: bool = False) -> Outcome:
    """The Stackelberg equilibrium of the game restricted to the learners' action
    grids, by enumeration: each prosumer answers every grid price with its best
    grid demand and the server takes the grid price(s) that pay it most. This is
    the best any learner on those grids can reach."""
    price_grid, demand_grid = np.asarray(grid.prices), np.asarray(grid.demands)
    utilities = prosumer_utility(demand_grid[:, None, None], price_grid[None, :, None], market)
    answers = demand_grid[np.argmax(utilities, axis=0)]  # (prices, prosumers)
    profits = (price_grid[:, None] - market.unit_cost) * answers
    if discriminate:
        prices = price_grid[np.argmax(profits, axis=0)]
    else:
        prices = np.full(len(market.intentions), price_grid[np.argmax(profits.sum(axis=1))])
    return outcome(prices, answers[np.searchsorted(price_grid, prices), np.arange(len(prices))], market)
