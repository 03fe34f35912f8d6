"""Distance-based distribution line loss (thesis §3.2.2, §3.4; the C·dist_ij of eq. 3.11).

Which reading, and why. Eq. 3.11 minimises Σ X_ij · C · dist_ij, where "C represents per km
line loss (estimated by the DSO)": the loss of a transfer is proportional to the line it
travels and nothing else. The default model is that reading, with a cap:

    loss(d) = min(cap, per_km · d)              (the default: base = 0)

* per_km = C = 0.27 %/km. The thesis states no value for C. Below the cap the choice does not
  matter to the shares the thesis reports: every loss rate, acting alone or inside a
  coalition, scales with C, so the loss saved against acting alone (Fig. 3.9(b)) and the
  coalitions formed are the same for every C. C sets only the absolute Wh and where the cap
  starts. 0.27 %/km is the slope of the reported range over the area: (5.6 % − 1.8 %) over
  the 14.1 km from the central EDC to the farthest corner of the 20 km × 20 km area.
* cap = 5.6 %: the top of the range of losses the thesis takes from [108] ("distribution
  line loss with the range from 1.8% to 5.6%", §3.4.4). At 0.27 %/km it binds beyond
  20.7 km, i.e. only on peer-to-peer pairs across the area (up to 28.3 km); every EDC leg
  (at most 14.1 km, 3.8 %) is below it.

The floor, an option. An earlier reading of the same sentence took the bottom of that range,
1.8 %, as a distance-independent loss that every transfer pays, even next door (transformer
and conversion losses): loss(d) = min(cap, base + per_km · d) with base = `FLOOR_PPM`. Eq. 3.11
has no such term, so it is not the default; `LossModel(base_ppm=FLOOR_PPM)` (or
`gridnode sim coalition --floor-ppm 18000`) restores it.

The parameters are integers in parts per million so the chain's integer form and the
proposer's float form share one source. Two arithmetics implement the same `Losses`
interface: `IntLosses` here (Wh, metres, floored products) verifies, and
`market.economics.line_loss.FloatLosses` (kWh, km) proposes; the score formulas in
`rules.poeg` are written once over it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from consensus.rules.community import Community

PPM = 1_000_000
E = TypeVar("E", int, float)


FLOOR_PPM = 18_000
"""The optional distance-independent floor: 1.8 %, the bottom of the thesis's reported range."""


@dataclass(frozen=True)
class LossModel:
    """loss(d) = min(cap, base + per_km · d) as a fraction of the energy moved, in ppm.

    The default is eq. 3.11's reading, base = 0 (see the module docstring); base =
    `FLOOR_PPM` is the floored variant."""

    base_ppm: int = 0
    """Distance-independent loss of any transfer: 0 in eq. 3.11; `FLOOR_PPM` (1.8 %) as an option."""
    per_km_ppm: int = 2_700
    """C of eq. 3.11: loss per km of line (0.27 %/km)."""
    cap_ppm: int = 56_000
    """Largest loss of any transfer (5.6 %, the top of the reported range)."""

    def __post_init__(self) -> None:
        for name in ("base_ppm", "per_km_ppm", "cap_ppm"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"LossModel.{name} must be a non-negative integer (ppm), got {value!r}")
        if self.cap_ppm > PPM:
            raise ValueError(f"LossModel.cap_ppm is a fraction of the energy moved: at most {PPM}, got {self.cap_ppm}")
        if self.base_ppm > self.cap_ppm:
            raise ValueError(f"LossModel.base_ppm ({self.base_ppm}) exceeds cap_ppm ({self.cap_ppm})")

    @property
    def floored(self) -> bool:
        """Whether the model has the distance-independent floor that eq. 3.11 does not."""
        return self.base_ppm > 0

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
