"""The four-household community of paper 001 §4: its PV (Table 1) and the loads, weather
and houses the paper does not tabulate.

All profiles are average power in kW per half-hour slot from 7:00 to 19:00, the
window the paper simulates because PV produces only then. Table 1 gives PV at
two-hour marks (its column header says consumption, its title and Fig. 4 say
generation); we interpolate linearly to slot midpoints.

The paper shows the households' consumption only as a figure (Fig. 5) and
states only that the loads differ from household to household, that the
households trade with the main grid from 10:00 to 15:00 before the game, and
that household 1 peaks at 7 kW, in the late morning (Table 2). The base
(non-cooling) loads below are ours: four typical occupancies chosen to fit
those statements (household 1 busy from the morning, the others light by day
so that they have PV to spare while household 1 is short). Cooling comes on
top, from the house model below and the outdoor temperature of a hot summer
day (27.5 °C at 7:00, 35 °C at 15:00); it is what makes comfort and
consumption pull against each other in the game.

One statement of §4 these loads do not meet: the day's total PV is "slightly
less than the total consumption". Here PV (114 kWh) is two thirds of it (181 kWh
before the game, 166 kWh after), because cooling, the only consumption the
game can move, is most of the load. A milder day meets it (mean 24 °C instead
of 30 °C: PV ≈ consumption) but leaves the game little to move (household 1's
cut falls to about 5 %), and the community's peak draw stays at 18:30 either
way, when dinner loads meet no PV.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SLOT_HOURS = 0.5
"""The paper's trading interval: strategies are chosen each half hour."""
SLOT_STARTS = tuple(7.0 + SLOT_HOURS * k for k in range(24))
"""Start of each slot, in hours: 7:00, 7:30, …, 18:30."""

TABLE1_HOURS = (7, 9, 11, 13, 15, 17, 19)
TABLE1_PV_KW = (
    (0.0, 0.8, 3.3, 5.3, 3.6, 0.8, 0.1),
    (0.0, 1.0, 3.7, 5.4, 3.8, 1.0, 0.1),
    (0.0, 0.8, 3.4, 5.7, 3.3, 0.6, 0.1),
    (0.0, 0.5, 3.1, 5.2, 4.0, 1.3, 0.1),
)
"""Paper 001, Table 1: each household's PV output at the two-hour marks."""

BASE_LOAD_HOURS = tuple(range(7, 20))
BASE_LOAD_KW = (
    # Household 1: a family at home all day; cooking, laundry and appliances through the late morning.
    (1.2, 2.4, 2.6, 2.8, 3.0, 3.0, 2.8, 2.4, 2.0, 1.8, 1.8, 2.0, 2.2),
    # Household 2: a working couple; little use while out, dinner from 17:00.
    (0.8, 1.0, 0.6, 0.6, 0.8, 1.4, 1.0, 0.8, 0.8, 1.0, 1.6, 2.4, 2.6),
    # Household 3: a retired couple; morning and lunchtime cooking, early dinner.
    (1.0, 1.6, 1.4, 1.2, 1.6, 2.4, 2.0, 1.2, 1.0, 1.2, 2.0, 2.6, 2.2),
    # Household 4: a single occupant out most of the day; light use until the evening.
    (1.4, 1.0, 0.4, 0.3, 0.3, 0.4, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 2.6),
)
"""Our base loads (appliances, cooking, lighting: everything but cooling), kW on the hour."""


@dataclass(frozen=True)
class House:
    """How a home's indoor temperature answers the weather and its air conditioner.

    Paper 001's game is static within each half hour, so the link between
    consumption and comfort is static too: the steady state of a
    one-resistance house model, in which cooling electricity P removes COP·P
    of heat and the indoor temperature settles where that balances the heat
    leaking in, T = T_out − R·COP·P. The values are those of ordinary
    dwellings (R of 1–2.5 °C per kW of heat, a split-system COP of 3);
    none is given in the paper."""

    resistance_c_per_kw: float = 2.0
    """R: indoor-outdoor temperature difference per kW of heat flowing in."""
    cop: float = 3.0
    """Heat removed per unit of electricity by the air conditioner."""
    cooling_max_kw: float = 3.0
    """The air conditioner's electric rating."""
    setpoint_c: float = 21.0
    """The thermostat before the game: the comfort optimum of eq. 2 for the paper's bounds."""


HOUSES = (
    House(resistance_c_per_kw=1.0, cooling_max_kw=4.5),
    House(),
    House(resistance_c_per_kw=2.2, cooling_max_kw=2.5),
    House(resistance_c_per_kw=2.5, cooling_max_kw=2.5),
)
"""Household 1 is a large, leaky family house (1 kW of heat per °C, two big
air conditioners), which with its base load puts its pre-game peak at the
paper's 7 kW; households 2–4 are ordinary homes, household 4 a small flat.
How much the game cuts household 1's peak depends on this choice: the leakier
the house, the more kW each degree of comfort given up saves (R = 1.5 °C/kW
gives a cut of about 8 % where R = 1 gives 14 %)."""


def _slot_midpoints() -> np.ndarray:
    return np.asarray(SLOT_STARTS) + SLOT_HOURS / 2


def pv_kw() -> np.ndarray:
    """Table 1 interpolated to the slots, shape (households, slots)."""
    return np.array([np.interp(_slot_midpoints(), TABLE1_HOURS, row) for row in TABLE1_PV_KW])


def base_load_kw() -> np.ndarray:
    """Our base loads interpolated to the slots, shape (households, slots)."""
    return np.array([np.interp(_slot_midpoints(), BASE_LOAD_HOURS, row) for row in BASE_LOAD_KW])


def outdoor_temperature_c() -> np.ndarray:
    """A hot summer day: 30 + 5·sin(π(h − 9)/12) °C, lowest in the morning, 35 °C at 15:00."""
    return np.array([30.0 + 5.0 * math.sin(math.pi * (h - 9.0) / 12.0) for h in _slot_midpoints()])
