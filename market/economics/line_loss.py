"""The float form of the line-loss model of `rules.line_loss` (kWh, km): what the proposer's
LP and merge-and-split work in. The model, its parameters (by default eq. 3.11's per-km loss
C·dist with no distance-independent floor) and the integer form a validator recomputes are in
`consensus.rules.line_loss`."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from market.economics.community import distances_km, edc_distances_km
from consensus.rules.community import Community
from consensus.rules.line_loss import PPM, LossModel


def fraction(model: LossModel, km: np.ndarray | float) -> np.ndarray | float:
    """Float loss rate of `model` over `km` (`LossModel.ppm` without the flooring)."""
    return np.minimum(model.cap_ppm, model.base_ppm + model.per_km_ppm * np.asarray(km)) / PPM


@dataclass(frozen=True)
class FloatLosses:
    """kWh and km; what the proposer's LP and merge-and-split work in."""

    community: Community
    model: LossModel = LossModel()

    @cached_property
    def edc_rate(self) -> np.ndarray:
        """loss(dist_id) for every prosumer."""
        return np.asarray(fraction(self.model, edc_distances_km(self.community)))

    @cached_property
    def pair_rate(self) -> np.ndarray:
        """loss(dist_ij) for every pair."""
        return np.asarray(fraction(self.model, distances_km(self.community)))

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
