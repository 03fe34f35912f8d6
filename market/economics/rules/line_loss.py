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
`Losses` interface: `IntLosses` here (Wh, metres, floored products) verifies, and
`market.economics.line_loss.FloatLosses` (kWh, km) proposes; the score formulas in
`rules.poeg` are written once over it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from market.economics.rules.community import Community

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
