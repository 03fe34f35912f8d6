"""Distance-based distribution line loss (thesis §3.2.2, §3.4; the C·dist_ij of eq. 3.11).

The thesis allocates loss per transaction by its path ([108], eqs. 3.1–3.2) and
reports losses between 1.8 % and 5.6 %, but states no per-km coefficient. We
model the fraction of energy lost on a transfer over d km as

    loss(d) = min(cap, base + per_km · d)

* base = 1.8 %: the bottom of the reported range, the distance-independent
  part (transformer and conversion losses) that even a next-door trade pays;
* per_km = 0.27 %/km: chosen so that a prosumer in the farthest corner of the
  20 km × 20 km area (14.1 km from the central EDC) reaches the top of the range,
  1.8 % + 0.27 % · 14.1 ≈ 5.6 %;
* cap = 5.6 %: the top of the reported range, also for peer-to-peer distances
  longer than any EDC leg (up to 28 km).

The parameters are integers in parts per million so the chain's integer form and
the proposer's float form share one source. Two arithmetics implement the same
`Losses` interface: `FloatLosses` (kWh, km) proposes, `IntLosses` (Wh, metres,
floored products) verifies; the score formulas in `poeg` are written once over it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol, TypeVar

import numpy as np

from market.economics.community import Community

PPM = 1_000_000
E = TypeVar("E", int, float)


@dataclass(frozen=True)
class LossModel:
    """loss(d) = min(cap, base + per_km · d) as a fraction of the energy moved, in ppm."""

    base_ppm: int = 18_000
    """Distance-independent loss of any transfer (1.8 %)."""
    per_km_ppm: int = 2_700
    """C of eq. 3.11: added loss per km of line (0.27 %/km)."""
    cap_ppm: int = 56_000
    """Largest loss of any transfer (5.6 %)."""

    def ppm(self, metres: int) -> int:
        """Integer loss rate over `metres` (floored)."""
        return min(self.cap_ppm, self.base_ppm + self.per_km_ppm * metres // 1000)

    def fraction(self, km: np.ndarray | float) -> np.ndarray | float:
        """Float loss rate over `km`."""
        return np.minimum(self.cap_ppm, self.base_ppm + self.per_km_ppm * np.asarray(km)) / PPM


class Losses(Protocol[E]):
    """One arithmetic (float or integer) for the energy accounting of eqs. 3.4–3.8 and 3.17–3.23."""

    community: Community

    def energy(self, wh: int) -> E:
        """A metered Wh amount in this arithmetic's unit."""

    def to_edc(self, i: int, energy: E) -> E:
        """E_id^lo (= E_di^lo): loss of moving `energy` between prosumer i and the EDC."""

    def between(self, i: int, j: int, energy: E) -> E:
        """E_ij^lo: loss of moving `energy` between prosumers i and j."""

    def halves(self, loss: E) -> tuple[E, E]:
        """A trade's loss split into (seller's part, buyer's part); the parts sum to `loss`."""

    def scale(self, amount: E, ppm: int) -> E:
        """amount · ppm / 10⁶ (δ of eq. 3.23 and other fixed-point fractions)."""

    def value(self, energy: E, price_per_kwh: int) -> E:
        """Money for `energy` at `price_per_kwh` base units (p_t of eqs. 3.17, 3.22)."""


@dataclass(frozen=True)
class FloatLosses:
    """kWh and km; what the proposer's LP and merge-and-split work in."""

    community: Community
    model: LossModel = LossModel()

    @cached_property
    def edc_rate(self) -> np.ndarray:
        """loss(dist_id) for every prosumer."""
        return np.asarray(self.model.fraction(self.community.edc_distances_km))

    @cached_property
    def pair_rate(self) -> np.ndarray:
        """loss(dist_ij) for every pair."""
        return np.asarray(self.model.fraction(self.community.distances_km))

    def energy(self, wh: int) -> float:
        return wh / 1000.0

    def to_edc(self, i: int, energy: float) -> float:
        return energy * float(self.edc_rate[i])

    def between(self, i: int, j: int, energy: float) -> float:
        return energy * float(self.pair_rate[i, j])

    def halves(self, loss: float) -> tuple[float, float]:
        return loss / 2.0, loss / 2.0

    def scale(self, amount: float, ppm: int) -> float:
        return amount * ppm / PPM

    def value(self, energy: float, price_per_kwh: int) -> float:
        return energy * price_per_kwh


@dataclass(frozen=True)
class IntLosses:
    """Wh and metres, every product floored: what a validator recomputes bit for bit."""

    community: Community
    model: LossModel = LossModel()

    def energy(self, wh: int) -> int:
        return wh

    def to_edc(self, i: int, energy: int) -> int:
        return energy * self.model.ppm(self.community.distance_m(i, None)) // PPM

    def between(self, i: int, j: int, energy: int) -> int:
        return energy * self.model.ppm(self.community.distance_m(i, j)) // PPM

    def halves(self, loss: int) -> tuple[int, int]:
        return loss // 2, loss - loss // 2

    def scale(self, amount: int, ppm: int) -> int:
        return amount * ppm // PPM

    def value(self, energy: int, price_per_kwh: int) -> int:
        return energy * price_per_kwh // 1000
