"""`gridnode sim households`: the four-household trading game of paper 001 (§4, Figs. 4–7).

Plays the day from 7:00 to 19:00 twice: with the households' habits (each
holds its thermostat and trades its net with the main grid) and with a pure
Nash equilibrium of each half-hour's game, and reports

* household1_peak_cut: how much lower household 1's peak consumption is (the paper: 7 → 6 kW, ≈14 %);
* grid_peak_cut: how much lower the peak of the households' trade with the main grid, Σ|E_main|,
  is (Fig. 7's negative part; the paper: ≈10 %); import_peak_cut: the same for the community's
  net draw from the main grid;
* the main-grid trading between 10:00 and 15:00, which the paper says the game greatly reduces;
* the day's PV against its consumption, which the paper says is slightly less.

The game has no randomness, so `--seed` changes nothing.
"""
from __future__ import annotations

import sys

import numpy as np

from market.economics import household_data as data
from market.economics.households import GameParams, equilibrium_day, habit_day, paper_community, peak_cut

MIDDAY = (10.0, 15.0)
"""The hours in which the paper reports heavy main-grid trading before the game."""


def _kwh(power_kw: np.ndarray, hours: tuple[float, float]) -> float:
    starts = np.asarray(data.SLOT_STARTS)
    inside = (starts >= hours[0]) & (starts < hours[1])
    return float(power_kw[inside].sum() * data.SLOT_HOURS)


def run(cooling_step_kw: float = GameParams().cooling_step_kw, max_rounds: int = 100, plot: str | None = None,
        progress: bool = False) -> dict:
    """The day with habits and at equilibrium (`cooling_step_kw`: resolution of the air-conditioner
    settings; `max_rounds`: best-response rounds per slot before giving up). Writes the figure
    to `plot` (a PNG path) when given."""
    from tqdm import tqdm

    community = paper_community()
    params = GameParams(cooling_step_kw=cooling_step_kw)
    with tqdm(total=2, disable=not progress, file=sys.stderr, desc="days") as bar:
        before = habit_day(community)
        bar.update()
        after = equilibrium_day(community, params, max_rounds)
        bar.update()
    result = {
        "household1_peak_cut": round(peak_cut(before.consumption_kw[0], after.consumption_kw[0]), 4),
        "grid_peak_cut": round(peak_cut(before.main_traffic_kw, after.main_traffic_kw), 4),
        "import_peak_cut": round(peak_cut(before.grid_import_kw, after.grid_import_kw), 4),
        "household1_peak_kw": {"before": round(float(before.consumption_kw[0].max()), 3),
                               "after": round(float(after.consumption_kw[0].max()), 3)},
        "grid_peak_kw": {"before": round(float(before.main_traffic_kw.max()), 3),
                         "after": round(float(after.main_traffic_kw.max()), 3)},
        "grid_peak_at": {"before": data.SLOT_STARTS[int(before.main_traffic_kw.argmax())],
                         "after": data.SLOT_STARTS[int(after.main_traffic_kw.argmax())]},
        "import_peak_kw": {"before": round(float(before.grid_import_kw.max()), 3),
                           "after": round(float(after.grid_import_kw.max()), 3)},
        "midday_main_grid_kwh": {"before": round(_kwh(before.main_traffic_kw, MIDDAY), 3),
                                 "after": round(_kwh(after.main_traffic_kw, MIDDAY), 3)},
        "pv_kwh": round(float(community.pv_kw.sum() * data.SLOT_HOURS), 3),
        "consumption_kwh": {"before": round(float(before.consumption_kw.sum() * data.SLOT_HOURS), 3),
                            "after": round(float(after.consumption_kw.sum() * data.SLOT_HOURS), 3)},
        "equilibrium_slots": sum(after.equilibrium),
        "slots": len(after.equilibrium),
        "slot_starts": list(data.SLOT_STARTS),
        "consumption_kw": {"before": before.consumption_kw.round(3).tolist(),
                           "after": after.consumption_kw.round(3).tolist()},
        "grid_import_kw": {"before": before.grid_import_kw.round(3).tolist(),
                           "after": after.grid_import_kw.round(3).tolist()},
        "main_traffic_kw": {"before": before.main_traffic_kw.round(3).tolist(),
                            "after": after.main_traffic_kw.round(3).tolist()},
        "indoor_c_after": after.indoor_c.round(2).tolist(),
        "routes_after": [[move.route.name.lower() for move in profile] for profile in after.strategies],
    }
    if plot:
        _plot(result, community.pv_kw, plot)
    return result


def _plot(result: dict, pv_kw: np.ndarray, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = np.asarray(result["slot_starts"])
    before, after = np.asarray(result["consumption_kw"]["before"]), np.asarray(result["consumption_kw"]["after"])
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    for i, row in enumerate(pv_kw):
        axes[0, 0].plot(hours, row, label=f"household {i + 1}")
        axes[0, 1].plot(hours, before[i], label=f"household {i + 1}")
    axes[0, 0].set_title("Fig. 4: PV generation (Table 1), kW")
    axes[0, 1].set_title("Fig. 5: consumption before the game, kW")
    axes[1, 0].plot(hours, before[0], label="before the game")
    axes[1, 0].plot(hours, after[0], label="after the game")
    axes[1, 0].set_title("Fig. 6: household 1 consumption, kW")
    axes[1, 1].plot(hours, -np.asarray(result["grid_import_kw"]["before"]), label="before the game")
    axes[1, 1].plot(hours, -np.asarray(result["grid_import_kw"]["after"]), label="after the game")
    axes[1, 1].set_title("Fig. 7: grid load (PV surplus +, main-grid draw −), kW")
    for ax in axes.flat:
        ax.set_xlabel("hour")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
