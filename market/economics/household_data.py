"""The four-household community of paper 001 §4: its PV (Table 1) and the loads, weather
and houses the paper does not tabulate.

All profiles are average power in kW per half-hour slot from 7:00 to 19:00, the
window the paper simulates because PV produces only then. Table 1 gives PV at
two-hour marks (its column header says consumption, its title and Fig. 4 say
generation); we interpolate linearly to slot midpoints.

The paper shows the households' consumption only as a figure (Fig. 5). What its
text states, and what the loads below are fitted to, is:

- "the total PV generation is slightly less than the total consumption" (§4, after
  the game): PV 113.6 kWh against 125.6 kWh consumed before the game and 114.7 kWh
  after it;
- "Before the game from 10:00 to 15:00 the households traded a lot of electricity
  with the main grid": the habits' main-grid traffic Σ|E_main| peaks at 12:30
  (8.7 kW) and 10:00-15:00 carries half the day's (35.8 of 71 kWh), because PV
  then far exceeds the light daytime loads of households 2-4 while household 1 is
  short;
- household 1 peaks at 7 kW (§4, Fig. 6) in the late morning (Table 2: 7 at 10:30);
- "the respective load curves differ greatly" (§2.2): four occupancies.

The base (non-cooling) loads are ours, shaped to those statements. Cooling comes on
top, from the house model below and a warm summer day (25 + 6·sin(π(h − 9)/12) °C:
22 °C at 7:00, 31 °C at 15:00, 28 °C at 18:30). Every home has the same ordinary
thermal parameters (`House()`), none chosen for the result: the paper gives none,
and the game's cut of a home's peak is set by them (each °C of comfort given up
saves 1/(R·COP) kW), so tuning them would be tuning the output.
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
    (1.0, 1.8, 3.2, 4.8, 6.0, 5.6, 3.8, 2.6, 2.0, 1.6, 1.4, 1.4, 1.4),
    # Household 2: a working couple; fridge and standby by day, a light evening.
    (0.8, 0.8, 0.8, 0.8, 0.8, 1.1, 0.9, 0.8, 0.8, 0.8, 0.9, 0.9, 0.9),
    # Household 3: a retired couple; morning and lunchtime cooking.
    (0.8, 1.1, 1.2, 1.0, 1.3, 1.7, 1.3, 1.0, 0.9, 0.9, 1.0, 1.0, 0.9),
    # Household 4: a single occupant out most of the day.
    (0.9, 0.7, 0.6, 0.6, 0.6, 0.7, 0.7, 0.6, 0.6, 0.6, 0.7, 0.9, 0.9),
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


HOUSES = (House(), House(), House(), House())
"""Four ordinary homes with the same thermal parameters. (The earlier fit made
household 1 a leaky house, R = 1 °C/kW, to obtain a 14 % cut of its peak; with
R = 1.5 the cut was 8 %. The cut is an output; R is not in the paper.)"""


def _slot_midpoints() -> np.ndarray:
    return np.asarray(SLOT_STARTS) + SLOT_HOURS / 2


def pv_kw() -> np.ndarray:
    """Table 1 interpolated to the slots, shape (households, slots)."""
    return np.array([np.interp(_slot_midpoints(), TABLE1_HOURS, row) for row in TABLE1_PV_KW])


def base_load_kw() -> np.ndarray:
    """Our base loads interpolated to the slots, shape (households, slots)."""
    return np.array([np.interp(_slot_midpoints(), BASE_LOAD_HOURS, row) for row in BASE_LOAD_KW])


def outdoor_temperature_c() -> np.ndarray:
    """A warm summer day: 25 + 6·sin(π(h − 9)/12) °C, 22 °C at 7:00, 31 °C at 15:00."""
    return np.array([25.0 + 6.0 * math.sin(math.pi * (h - 9.0) / 12.0) for h in _slot_midpoints()])
