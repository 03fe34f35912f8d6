"""The V2V trading MDP for EVs parked at a workplace (thesis §4.3.1–4.3.3, Table 4.1).

An episode is one EV's stay: it arrives at t_a, trades once an hour, and departs at t_d.
Many episodes run side by side as arrays (one row per EV-day) so a learner can collect a
batch in a few numpy steps.

Parameters the thesis leaves open, chosen here:
* charger power: 7 kW per hour either way (a common bidirectional wallbox);
* grid buy-back: the grid pays 50 % of its retail price for exported energy, and V2V
  trades clear at the midpoint, so p^Gsell > p^v2v > p^Gbuy as §4.3.1 assumes;
* η = 200 ¢ per squared SOC unit of range anxiety at departure, applied as a penalty (eq.
  4.15's RA grows with the distance from SOC^max, so it lowers satisfaction);
* direct V2V only, so Ω_t = 0 (eq. 4.16, as in the thesis's experiments);
* the state (4.10) also carries the hour and the hours left before departure, which the
  reward depends on and (4.11) makes part of the dynamics.
Prices are Table 4.1's grid prices in ¢/kWh, drawn once per day for each band.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.economics.posoc import hour_score, price_factor
from consensus.rules.posoc import band

CAPACITY_KWH = 42.0
"""Table 4.1: a Toyota RAV4's battery."""
SOC_MIN, SOC_MAX = 0.2, 0.8
"""§4.4.1: recommended SOC limits."""
POWER_KWH = 7.0
ACTIONS = np.array([-1.0, -0.5, 0.0, 0.5, 1.0]) * POWER_KWH
"""Energy bought (+) or sold (−) in one hour (eq. 4.12), before the SOC limits (4.13)."""
BUYBACK = 0.5
ETA = 200.0
PRICE_MEAN = {"off": 6.8, "mid": 10.0, "on": 12.9}
PRICE_STD = {"off": 2.6, "mid": 1.5, "on": 2.0}
BANDS = ("off", "mid", "on")
HOURS = np.arange(24)
BAND_OF_HOUR = np.array([BANDS.index(band(h)) for h in HOURS])
OBSERVATION_SIZE = 11


@dataclass(frozen=True)
class Days:
    """A batch of EV-days drawn from Table 4.1."""

    arrival: np.ndarray
    """Hour of arrival, N(7, 1) within [4, 10]."""
    departure: np.ndarray
    """Hour of departure, N(18, 1) within [8, 22] and after arrival."""
    soc: np.ndarray
    """SOC at arrival, N(0.5, 0.1²) within [0.4, 0.9]."""
    prices: np.ndarray
    """Grid retail price λ of each band (off, mid, on), ¢/kWh, shape (days, 3)."""

    @property
    def count(self) -> int:
        return len(self.arrival)


def sample_days(count: int, rng: np.random.Generator) -> Days:
    arrival = np.clip(np.rint(rng.normal(7, 1, count)), 4, 10).astype(int)
    departure = np.clip(np.rint(rng.normal(18, 1, count)), 8, 22).astype(int)
    departure = np.maximum(departure, arrival + 1)
    soc = np.clip(rng.normal(0.5, 0.1, count), 0.4, 0.9)
    prices = np.column_stack([np.clip(rng.normal(PRICE_MEAN[b], PRICE_STD[b], count), 1.0, None) for b in BANDS])
    return Days(arrival, departure, soc, prices)


def deltas(days: Days) -> np.ndarray:
    """δ of each band per day (eqs. 4.2–4.4), shape (days, 3); δ_off = 0."""
    return price_factor(days.prices, days.prices[:, :1])


@dataclass(frozen=True)
class Step:
    """What one hour of trading did, per EV-day."""

    energy: np.ndarray
    """A_t after the SOC limits: bought (+) or sold (−), kWh."""
    reward: np.ndarray
    """R_t (eq. 4.14)."""
    profit: np.ndarray
    """Arbitrage profit: V2V cash minus the cost of restoring the energy at the day's off-peak price."""
    score: np.ndarray
    """PoSOC hour score (eq. 4.1)."""
    soc: np.ndarray
    """SOC after the hour."""


def observe(days: Days, soc: np.ndarray, hour: int) -> np.ndarray:
    """State s_t (eq. 4.10) plus time features, scaled to order one."""
    b = BAND_OF_HOUR[hour]
    retail = days.prices[:, b]
    v2v = retail * (1 + BUYBACK) / 2
    onehot = np.zeros((days.count, 3))
    onehot[:, b] = 1.0
    return np.column_stack([
        deltas(days)[:, b], soc, v2v / 20, retail * BUYBACK / 20, retail / 20, np.zeros(days.count),
        np.full(days.count, hour / 24), (days.departure - hour) / 18, onehot,
    ])


def step(days: Days, soc: np.ndarray, hour: int, action: np.ndarray, use_delta: bool = True) -> Step:
    """Apply each EV's action index for `hour`. Rows not parked at that hour do nothing."""
    b = BAND_OF_HOUR[hour]
    parked = (days.arrival <= hour) & (hour < days.departure)
    departing = parked & (hour == days.departure - 1)
    low, high = -(soc - SOC_MIN) * CAPACITY_KWH, (SOC_MAX - soc) * CAPACITY_KWH  # (4.13)
    energy = np.where(parked, np.clip(ACTIONS[action], np.minimum(low, 0), np.maximum(high, 0)), 0.0)
    new_soc = soc + energy / CAPACITY_KWH
    v2v = days.prices[:, b] * (1 + BUYBACK) / 2
    delta = deltas(days)[:, b]
    reward = -(delta if use_delta else 1.0) * energy * v2v  # (4.14) with Ω = 0 (4.16)
    reward = reward - np.where(departing, ETA * (new_soc - SOC_MAX) ** 2, 0.0)  # range anxiety (4.15)
    profit = -energy * (v2v - days.prices[:, 0])
    score = np.array([hour_score(d, max(-e, 0.0), max(e, 0.0), s, dep, SOC_MAX, CAPACITY_KWH)
                      for d, e, s, dep in zip(delta, energy, new_soc, departing)])
    return Step(energy, reward, profit, np.where(parked, score, 0.0), new_soc)
