"""A community of prosumers for one settlement slot (thesis §3.4): metered energy and
positions around the electricity distribution centre (EDC), in the integers meters and
registries report (Wh, metres). The float forms (kWh, km) and the synthetic communities of
§3.4.4 are in `market.economics.community`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Community:
    """One slot's forecast for every prosumer; prosumer i is index i everywhere."""

    production_wh: tuple[int, ...]
    """Forecast generation 𝒫_i."""
    consumption_wh: tuple[int, ...]
    """Forecast consumption 𝒞_i."""
    x_m: tuple[int, ...]
    """East offset from the EDC."""
    y_m: tuple[int, ...]
    """North offset from the EDC."""

    @property
    def size(self) -> int:
        return len(self.production_wh)

    @cached_property
    def balance_wh(self) -> tuple[int, ...]:
        """E_i^bal = 𝒫_i − 𝒞_i: positive for a seller, negative for a buyer."""
        return tuple(p - c for p, c in zip(self.production_wh, self.consumption_wh))

    def distance_m(self, i: int, j: int | None) -> int:
        """Integer distance (floor of the Euclidean metres) to prosumer j, or to the EDC when j is None."""
        dx = self.x_m[i] - (0 if j is None else self.x_m[j])
        dy = self.y_m[i] - (0 if j is None else self.y_m[j])
        return math.isqrt(dx * dx + dy * dy)
