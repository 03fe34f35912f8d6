"""The households' non-cooperative trading game of paper 001 (§3, eqs. 1–3).

Every half hour each household picks a strategy: one of the paper's five
routes for its energy (sell to or buy from the community, stay idle, buy from
or sell to the main grid) together with how hard to run its air conditioner,
which sets both its consumption and its indoor temperature. Its payoff (eq. 1)

    μ_i = λ^Ein · C_i(T) / |E_main|   (E_main ≠ 0),    ω · λ^Ein · C_i(T)   (E_main = 0)

rewards selling inside the community (λ > 1), punishes trading with the main
grid, and is worth nothing unless the home stays comfortable (eq. 2). Two
readings of the paper are made explicit here:

- The comfort factor multiplies both branches. As printed, eq. 1's second
  branch omits it, but the text says the payoff is zero whenever the strategy
  leaves the home too hot or too cold, whatever the trade.
- ω is "the reciprocal of the meter's minimum accuracy": an exchange smaller
  than 1/ω cannot be metered and counts as zero, so the two branches are one
  formula, λ^Ein·C/max(|E_main|, 1/ω), continuous at the meter's resolution.

Community trades are matched in the slot: sellers' offers and buyers' bids
clear pro rata at min(supply, demand); a buyer's shortfall comes from the main
grid and a seller's unsold surplus is curtailed (`settle`), which is how one
household's choice changes another's payoff. A pure Nash equilibrium (eq. 3)
is sought by best-response dynamics.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from market.economics import household_data as data
from market.economics.household_data import House


class Route(IntEnum):
    """The paper's five strategies (i)–(v) for a household's net energy."""

    SELL_COMMUNITY = 0
    BUY_COMMUNITY = 1
    IDLE = 2
    """Neither buy nor sell: the home lives on its own PV and curtails any surplus."""
    BUY_MAIN = 3
    SELL_MAIN = 4


@dataclass(frozen=True)
class GameParams:
    """The constants of eqs. 1–2, with paper 001 §4's values: "ω = 100, λ = 4,
    T_min = 15 °C, T_max = 27 °C, and a = 1/36 in Equation (1) and Equation (2).
    participants select strategies in a half-hour interval". `cooling_step_kw` is
    ours (the paper lists no strategy grid)."""

    omega: float = 100.0
    """ω: the reciprocal of the meter's resolution (kWh)."""
    lam: float = 4.0
    """λ > 1: the premium on energy sold inside the community."""
    t_min: float = 15.0
    """T_min (°C): below it the home is too cold."""
    t_max: float = 27.0
    """T_max (°C): above it the home is too hot."""
    a: float = 1.0 / 36.0
    """Scales comfort so that its peak, at (T_min + T_max)/2, is exactly 1."""
    cooling_step_kw: float = 0.25
    """Resolution of the air-conditioner settings a household chooses among."""


@dataclass(frozen=True)
class Strategy:
    """One household's move in one slot."""

    route: Route
    cooling_kw: float


@dataclass(frozen=True)
class Settlement:
    """Where each household's net energy went in a slot (kWh, positive = sold)."""

    community: np.ndarray
    """Ein: energy sold to (+) or bought from (−) the other households."""
    main: np.ndarray
    """E_main: energy sold to (+) or bought from (−) the main grid."""
    curtailed: np.ndarray
    """PV surplus neither used nor sold: an idle household's, or a community seller's unsold part."""


def comfort(temperature: np.ndarray | float, params: GameParams = GameParams()) -> np.ndarray:
    """C_i = −a·(T − T_min)·(T − T_max) inside (T_min, T_max), else 0 (eq. 2)."""
    t = np.asarray(temperature, dtype=float)
    inside = (t > params.t_min) & (t < params.t_max)
    return np.where(inside, -params.a * (t - params.t_min) * (t - params.t_max), 0.0)


def payoff(community: np.ndarray | float, main: np.ndarray | float, comfort_level: np.ndarray | float,
           params: GameParams = GameParams()) -> np.ndarray:
    """μ_i = λ^Ein·C_i/max(|E_main|, 1/ω) (eq. 1, both branches; see the module docstring)."""
    metered = np.maximum(np.abs(np.asarray(main, dtype=float)), 1.0 / params.omega)
    return params.lam ** np.asarray(community, dtype=float) * np.asarray(comfort_level) / metered


def indoor_temperature(outdoor: float, cooling_kw: np.ndarray | float, houses: Sequence[House]) -> np.ndarray:
    """T = T_out − R·COP·P: where each home settles when cooled at P (see `House`)."""
    gain = np.array([h.resistance_c_per_kw * h.cop for h in houses])
    return outdoor - gain * np.asarray(cooling_kw, dtype=float)


def thermostat_cooling_kw(outdoor: float, houses: Sequence[House]) -> np.ndarray:
    """The cooling that holds each home at its setpoint, within the air
    conditioner's rating: how households behave without the game."""
    gain = np.array([h.resistance_c_per_kw * h.cop for h in houses])
    setpoint = np.array([h.setpoint_c for h in houses])
    rating = np.array([h.cooling_max_kw for h in houses])
    return np.clip((outdoor - setpoint) / gain, 0.0, rating)


def settle(routes: Sequence[Route], net_kwh: np.ndarray) -> Settlement:
    """Clear one slot: community offers (net > 0) and bids (net < 0) trade pro
    rata up to min(supply, demand). A buyer's unmatched deficit must come from
    the main grid; a seller's unsold surplus is curtailed like an idle
    household's, because choosing to sell in the community (i) is choosing not
    to sell to the main grid (v). Main-grid traders trade their whole net there."""
    routes, net = np.asarray(routes), np.asarray(net_kwh, dtype=float)
    sellers, buyers = routes == Route.SELL_COMMUNITY, routes == Route.BUY_COMMUNITY
    supply, demand = net[sellers].sum(), -net[buyers].sum()
    traded = min(supply, demand)
    community = np.zeros_like(net)
    if traded > 0:
        community[sellers] = net[sellers] * traded / supply
        community[buyers] = net[buyers] * traded / demand
    curtailing = sellers | (routes == Route.IDLE)
    return Settlement(community=community, main=np.where(curtailing, 0.0, net - community),
                      curtailed=np.where(curtailing, net - community, 0.0))


@dataclass(frozen=True)
class Slot:
    """One half-hour game: what each household generates and must consume, and how hot it is outside."""

    pv_kwh: tuple[float, ...]
    base_kwh: tuple[float, ...]
    """Consumption other than cooling, which the game does not move."""
    outdoor_c: float
    houses: tuple[House, ...]
    params: GameParams = GameParams()

    def net_kwh(self, cooling_kw: np.ndarray) -> np.ndarray:
        """PV minus consumption when each household cools at `cooling_kw`."""
        return np.asarray(self.pv_kwh) - np.asarray(self.base_kwh) - np.asarray(cooling_kw) * data.SLOT_HOURS


def strategies(slot: Slot, household: int) -> list[Strategy]:
    """Every feasible move of one household: each air-conditioner setting with
    each route its net energy allows (sell with a surplus, buy with a deficit,
    idle without a deficit)."""
    levels = np.arange(0.0, slot.houses[household].cooling_max_kw + 1e-9, slot.params.cooling_step_kw)
    moves = []
    for level in levels:
        net = slot.pv_kwh[household] - slot.base_kwh[household] - level * data.SLOT_HOURS
        routes = ((Route.SELL_COMMUNITY, Route.SELL_MAIN, Route.IDLE) if net > 0 else
                  (Route.IDLE,) if net == 0 else (Route.BUY_COMMUNITY, Route.BUY_MAIN))
        moves.extend(Strategy(route, float(level)) for route in routes)
    return moves


def payoffs(slot: Slot, profile: Sequence[Strategy]) -> np.ndarray:
    """Every household's μ_i (eq. 1) when they play `profile`."""
    cooling = np.array([move.cooling_kw for move in profile])
    settled = settle([move.route for move in profile], slot.net_kwh(cooling))
    indoor = indoor_temperature(slot.outdoor_c, cooling, slot.houses)
    return payoff(settled.community, settled.main, comfort(indoor, slot.params), slot.params)


def best_response_dynamics(options: Sequence[int], payoff_of: Callable[[tuple[int, ...]], np.ndarray],
                           start: tuple[int, ...], max_rounds: int = 100) -> tuple[int, ...] | None:
    """Let players in turn switch to a best reply (options[i] strategies each,
    `payoff_of(profile)` giving every player's payoff) until nobody wants to.
    A player moves only for a strict gain, so play stops exactly at a pure
    Nash equilibrium (eq. 3). Returns it, or None when play comes back to a
    profile it has left (a cycle) or runs out of rounds: then this dynamics
    finds no pure equilibrium."""
    profile, seen = tuple(start), set()
    for _ in range(max_rounds):
        if profile in seen:
            return None
        seen.add(profile)
        moved = False
        for player, count in enumerate(options):
            current = payoff_of(profile)[player]
            replies = [payoff_of(profile[:player] + (k,) + profile[player + 1:])[player] for k in range(count)]
            best = int(np.argmax(replies))
            if replies[best] > current * (1 + 1e-9) + 1e-12:
                profile, moved = profile[:player] + (best,) + profile[player + 1:], True
        if not moved:
            return profile
    return None


def habits(slot: Slot) -> tuple[Strategy, ...]:
    """What the households do without the game: hold the thermostat's setpoint
    and trade their net with the main grid."""
    cooling = thermostat_cooling_kw(slot.outdoor_c, slot.houses)
    return tuple(Strategy(Route.SELL_MAIN if net > 0 else Route.BUY_MAIN, float(level))
                 for net, level in zip(slot.net_kwh(cooling), cooling))


def slot_equilibrium(slot: Slot, max_rounds: int = 100) -> tuple[Strategy, ...] | None:
    """A pure Nash equilibrium of one slot's game by best-response dynamics,
    starting from the move nearest each household's habit, or None if the
    dynamics finds none."""
    moves = [strategies(slot, i) for i in range(len(slot.houses))]
    start = tuple(min(range(len(options)), key=lambda k: (abs(options[k].cooling_kw - habit.cooling_kw),
                                                          options[k].route != habit.route))
                  for options, habit in zip(moves, habits(slot)))
    found = best_response_dynamics([len(m) for m in moves],
                                   lambda profile: payoffs(slot, [moves[i][k] for i, k in enumerate(profile)]),
                                   start, max_rounds)
    return None if found is None else tuple(moves[i][k] for i, k in enumerate(found))


@dataclass(frozen=True)
class Community:
    """The households, their homes and the day they trade through."""

    pv_kw: np.ndarray
    """Shape (households, slots)."""
    base_kw: np.ndarray
    """Shape (households, slots)."""
    outdoor_c: np.ndarray
    """Shape (slots,)."""
    houses: tuple[House, ...]

    def slot(self, t: int, params: GameParams = GameParams()) -> Slot:
        """The game of slot t."""
        return Slot(pv_kwh=tuple(float(e) for e in self.pv_kw[:, t] * data.SLOT_HOURS),
                    base_kwh=tuple(float(e) for e in self.base_kw[:, t] * data.SLOT_HOURS),
                    outdoor_c=float(self.outdoor_c[t]), houses=self.houses, params=params)


def paper_community() -> Community:
    """Paper 001 §4's four households with Table 1's PV and our loads and homes."""
    return Community(pv_kw=data.pv_kw(), base_kw=data.base_load_kw(),
                     outdoor_c=data.outdoor_temperature_c(), houses=data.HOUSES)


@dataclass(frozen=True)
class Day:
    """A day of play, slot by slot."""

    strategies: tuple[tuple[Strategy, ...], ...]
    """What each household played in each slot."""
    equilibrium: tuple[bool, ...]
    """Whether each slot's play is a pure Nash equilibrium found by best-response dynamics."""
    consumption_kw: np.ndarray
    """Each household's consumption, shape (households, slots)."""
    indoor_c: np.ndarray
    """Each home's indoor temperature, shape (households, slots)."""
    grid_import_kw: np.ndarray
    """The community's net draw from the main grid (negative: export), shape (slots,)."""
    main_traffic_kw: np.ndarray
    """Σ|E_main|: all the households' trade with the main grid, either way, shape (slots,)."""


def _day(community: Community, params: GameParams,
         choose: Callable[[Slot], tuple[tuple[Strategy, ...], bool]]) -> Day:
    households, slots = community.pv_kw.shape
    consumption, indoor = np.empty((households, slots)), np.empty((households, slots))
    grid, traffic, played, equilibrium = np.empty(slots), np.empty(slots), [], []
    for t in range(slots):
        slot = community.slot(t, params)
        profile, found = choose(slot)
        cooling = np.array([move.cooling_kw for move in profile])
        settled = settle([move.route for move in profile], slot.net_kwh(cooling))
        consumption[:, t] = community.base_kw[:, t] + cooling
        indoor[:, t] = indoor_temperature(slot.outdoor_c, cooling, slot.houses)
        grid[t] = -settled.main.sum() / data.SLOT_HOURS
        traffic[t] = np.abs(settled.main).sum() / data.SLOT_HOURS
        played.append(profile)
        equilibrium.append(found)
    return Day(strategies=tuple(played), equilibrium=tuple(equilibrium), consumption_kw=consumption,
               indoor_c=indoor, grid_import_kw=grid, main_traffic_kw=traffic)


def habit_day(community: Community) -> Day:
    """Before the game: every home holds its setpoint and trades its net with the main grid."""
    return _day(community, GameParams(), lambda slot: (habits(slot), False))


def equilibrium_day(community: Community, params: GameParams = GameParams(), max_rounds: int = 100) -> Day:
    """After the game: in each slot the households play a pure equilibrium;
    where best-response dynamics finds none they keep their habits."""
    def choose(slot: Slot) -> tuple[tuple[Strategy, ...], bool]:
        found = slot_equilibrium(slot, max_rounds)
        return (habits(slot), False) if found is None else (found, True)
    return _day(community, params, choose)


def peak_cut(before: np.ndarray, after: np.ndarray) -> float:
    """1 − peak(after)/peak(before): the fraction of the peak the game removes."""
    return 1.0 - float(np.max(after)) / float(np.max(before))
