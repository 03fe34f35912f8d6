"""Synthetic communities of the thesis's §3.4.4 and the float forms (km) of their distances.

The `Community` record itself, in Wh and metres, is the validator's and lives in
`consensus.rules.community`; everything here derives from it or draws one.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

from consensus.rules.community import Community

Distribution = Literal["normal", "uniform", "lognormal"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("normal", "uniform", "lognormal")

HALF_SIDE_M = 10_000
"""§3.4: a 20 km × 20 km area with the EDC in the middle (the origin)."""
MEAN_CONSUMPTION_KWH = 12.41
"""§3.4.4: daily mean household consumption in the Ausgrid data."""
MEAN_GENERATION_KWH = 7.45
"""§3.4.4: daily mean rooftop PV generation in the Ausgrid data."""
STD_KWH = 8.0
"""§3.4.4: the standard deviation used for both profiles."""


def distances_km(community: Community) -> np.ndarray:
    """dist_ij in km for every pair (the distance matrix 𝒟ℳ of §3.2.1)."""
    xy = np.column_stack([community.x_m, community.y_m]).astype(float) / 1000.0
    return np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])


def edc_distances_km(community: Community) -> np.ndarray:
    """dist_id in km from each prosumer to the EDC."""
    return np.hypot(np.asarray(community.x_m, float), np.asarray(community.y_m, float)) / 1000.0


def _draw_kwh(dist: Distribution, mean: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Daily energy with the given mean and STD_KWH, clipped at zero (a meter never reads negative)."""
    if dist == "normal":
        values = rng.normal(mean, STD_KWH, size)
    elif dist == "uniform":
        half_width = math.sqrt(3.0) * STD_KWH  # a uniform of width w has std w/√12
        values = rng.uniform(mean - half_width, mean + half_width, size)
    elif dist == "lognormal":
        sigma2 = math.log1p((STD_KWH / mean) ** 2)  # moments of the lognormal matched to (mean, std)
        values = rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2), size)
    else:
        raise ValueError(f"unknown distribution {dist!r}; choose one of {DISTRIBUTIONS}")
    return np.clip(values, 0.0, None)


def random_community(size: int, dist: Distribution, rng: np.random.Generator) -> Community:
    """The §3.4.4 synthetic community: Ausgrid means and spread, positions uniform over the area."""
    production = np.rint(_draw_kwh(dist, MEAN_GENERATION_KWH, size, rng) * 1000).astype(int)
    consumption = np.rint(_draw_kwh(dist, MEAN_CONSUMPTION_KWH, size, rng) * 1000).astype(int)
    xy = rng.integers(-HALF_SIDE_M, HALF_SIDE_M + 1, size=(size, 2))
    return Community(
        production_wh=tuple(int(v) for v in production),
        consumption_wh=tuple(int(v) for v in consumption),
        x_m=tuple(int(v) for v in xy[:, 0]),
        y_m=tuple(int(v) for v in xy[:, 1]),
    )
