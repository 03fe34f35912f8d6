"""The float form of the PoSOC hour score (thesis eqs. 4.1–4.4), for the learners of `v2v` and
`federated`. The integer form the chain recomputes, the aggregator draw and the fee book are
in `consensus.rules.posoc`."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def price_factor(price: ArrayLike, off_price: ArrayLike) -> np.ndarray:
    """δ_mid or δ_on (eqs. 4.3–4.4): the rise of a band's price over off-peak, relative to
    off-peak; kept in [0, 1] as eq. 4.2 requires (δ_off is 0). Works elementwise on arrays;
    `rules.posoc.price_factor_ppm` is the integer form."""
    return np.clip((np.asarray(price) - off_price) / off_price, 0.0, 1.0)


def hour_score(delta: float, discharged_kwh: float, charged_kwh: float, soc: float, departing: bool,
               soc_max: float, capacity_kwh: float) -> float:
    """𝒫𝒮_i for one hour (eq. 4.1): δ(𝒟 − 𝒞), plus the room (SOC^max − SOC) left in the
    battery when the EV departs. Both terms are in kWh (the room times the capacity)."""
    score = delta * (discharged_kwh - charged_kwh)
    return score + (soc_max - soc) * capacity_kwh if departing else score
