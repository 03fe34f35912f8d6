"""Paper 004's VPP day (§V, Tables 2–4, Fig. 5) in integers: a synthetic hourly profile, the
four cases, the running scheme recommended for each, and the day plan of who sells and who
buys how much in each hour, with its lots cleared off chain by Algorithm 1.

Units: power in W, energy in Wh (an hour at P W is P Wh), prices in elecoin wei per kWh. No
floats, no randomness: every agent of a live run computes the same plan from the same inputs.

**The synthetic day** (the paper's Perth data are not public). `PROFILE` gives, per hour, the
VPP's total renewable generation TG (of which `wind_w` comes from the wind households, the rest
from PV households) and its total load TL. Four hours are Table 3's rows, to the watt
(03:00, 08:00, 13:00, 21:00); the others are shaped like Fig. 5: the gap TG − TL is slightly
negative through the night, just positive at 08–09, strongly positive over the midday PV peak,
slightly negative again at 17:00 and strongly negative over the evening peak (and at 06:00,
before the sun is up). The ESS has a one-hour backup of `ESS_POWER_W` (40 kW: Table 3's
"TG + Backup − TL" column is TG − TL ± 40 kW at 13:00 and 21:00, and exactly 0 where the ESS
covers the whole gap), a capacity of 400 kWh and starts the day at half charge.

**The cases** (Table 2), from Table 3's columns gap = TG − TL and aided = TG + backup − TL:

    aided < 0               Case I   ESS short,   demand not met,  discharging
    aided = 0, gap >= 0     Case II  ESS short,   just enough,     charging needed
    aided > 0               Case III ESS charged, enough,          charging
    aided = 0, gap < 0      Case IV  ESS charged, just enough,     discharging

**Who trades.** Households are agents with generation (even-numbered: wind, odd-numbered: PV;
a single household has both) and load (split with weights 9, 10, 11, 12, …); a household with
generation above its load sells the difference, one below buys it. The ESS sells its
discharge and buys its charge. The diesel generator is the VPP's dispatchable reserve, outside
TG: it runs only in Case I hours, selling up to `DIESEL_RATING_W`; the coordinator (P2P_ETC)
sells what is still missing, bought from the market operator (the grid), and in Case III buys
the surplus the ESS cannot take, for export. Sales and purchases balance in every hour.

**Lots and schemes** (Table 4, one scheme per case): Case I runs RS1, the coordinator's
schedule (its example in §IV-C is exactly this: selling auctions for the consumers at the rush
hour); it pools the hour's supply and sells it in one lot per buyer, sized to that buyer's
need. Cases II and III run RS2: each seller opens its own auction for its hour's energy.
Case IV runs RS3: the coordinator opens, through the shared factory, one auction per seller's
request, for that seller's energy. An auction sells one lot; its price is the binding bid.

**Bidding.** A buyer values energy at a price per kWh (a household 100–120 % of the grid
price, more the larger its share of the hour's need; the ESS 70 %; the coordinator's export
50 %) and bids that value for the whole lot at once (Algorithm 1 then sets the binding bid:
a lone bidder pays the increment, 40 % of the lot's value at the grid price, the feed-in price);
it bids on a lot only while its unmet need is at least half the lot. `clear_hour` replays that
off chain with the contract's own `next_bid_state`."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from market.contracts.auction import next_bid_state

ESS_POWER_W = 40_000
"""The ESS's one-hour backup: what it can charge or discharge in an hour."""
ESS_CAPACITY_WH = 400_000
ESS_START_WH = 200_000
DIESEL_RATING_W = 100_000
GRID_PRICE_WEI_PER_KWH = 10 ** 15
"""0.001 elecoin per kWh: the market operator's price, the yardstick for the valuations."""
INCREMENT_PERCENT = 40
"""An auction's bid increment: this share of its lot's value at the grid price (at least 1 wei),
the feed-in price the seller would get from the grid. It is what a lone bidder pays (Algorithm
1: the first bid's binding level is min(bid, increment)), so it acts as the seller's floor."""
ESS_VALUE_PERCENT = 70
EXPORT_VALUE_PERCENT = 50
HOUSEHOLD_VALUE_PERCENT = (100, 120)
"""A household's valuation ranges over these percentages of the grid price, by its need."""

COORDINATOR, ESS, DIESEL = "coordinator", "ess", "diesel"


def household(index: int) -> str:
    return f"house{index}"


@dataclass(frozen=True)
class HourProfile:
    hour: int
    generation_w: int
    """TG: the households' renewable generation (wind + PV)."""
    load_w: int
    """TL: the households' load."""
    wind_w: int
    """The part of TG from the wind households; TG − wind is PV."""


PROFILE: tuple[HourProfile, ...] = tuple(HourProfile(h, tg, tl, wind) for h, (tg, tl, wind) in enumerate((
    (505_000, 520_000, 505_000), (500_000, 512_000, 500_000), (498_000, 510_000, 498_000),
    (502_907, 518_800, 502_907),  # Table 3, 03:00: TG 502.9069 kW, TL 518.8 kW
    (500_000, 525_000, 500_000), (505_000, 540_000, 505_000),
    (525_000, 585_000, 500_000), (540_000, 560_000, 480_000),
    (551_334, 536_400, 460_000),  # Table 3, 08:00: TG 551.3342 kW, TL 536.4 kW
    (590_000, 555_000, 440_000), (690_000, 525_000, 420_000), (790_000, 505_000, 400_000),
    (840_000, 490_000, 390_000),
    (850_872, 479_000, 380_000),  # Table 3, 13:00: TG 850.8720 kW, TL 479.0 kW
    (820_000, 490_000, 390_000), (745_000, 510_000, 410_000), (625_000, 560_000, 430_000),
    (540_000, 575_000, 450_000), (500_000, 640_000, 470_000), (480_000, 690_000, 480_000),
    (478_000, 700_000, 478_000),
    (476_163, 694_600, 476_163),  # Table 3, 21:00: TG 476.1627 kW, TL 694.6 kW
    (480_000, 650_000, 480_000), (490_000, 580_000, 490_000))))


class Case(Enum):
    """Table 2: (ESS status, satisfying demand, charging status)."""
    I = ("short", "not enough", "discharging")
    II = ("short", "just enough", "charging needed")
    III = ("charged", "enough", "charging")
    IV = ("charged", "just enough", "discharging")

    @property
    def ess_status(self) -> str:
        return self.value[0]

    @property
    def demand(self) -> str:
        return self.value[1]

    @property
    def charging(self) -> str:
        return self.value[2]


class Scheme(Enum):
    RS1 = "operator schedule"
    RS2 = "sellers' own auctions"
    RS3 = "factory, opened by the coordinator on request"


RECOMMENDATIONS: dict[Case, dict[Scheme, str]] = {
    Case.I: {Scheme.RS1: "Recommended", Scheme.RS2: "To Reduce Penalties", Scheme.RS3: "Recommended"},
    Case.II: {Scheme.RS1: "Optional", Scheme.RS2: "Recommended", Scheme.RS3: "Optional"},
    Case.III: {Scheme.RS1: "Optional", Scheme.RS2: "Strongly Recommended", Scheme.RS3: "Optional"},
    Case.IV: {Scheme.RS1: "Optional", Scheme.RS2: "Not Recommended", Scheme.RS3: "Recommended"},
}
"""Table 4."""

SCHEME: dict[Case, Scheme] = {Case.I: Scheme.RS1, Case.II: Scheme.RS2, Case.III: Scheme.RS2, Case.IV: Scheme.RS3}
"""The scheme a run uses per case: one Table 4 calls (strongly) recommended."""


def classify(generation_w: int, load_w: int, backup_w: int) -> Case:
    """Table 2's case of an hour from Table 3's columns: TG, TL and the ESS backup (positive:
    discharging into the VPP, negative: charging from it)."""
    gap = generation_w - load_w
    aided = gap + backup_w
    if aided < 0:
        return Case.I
    if aided > 0:
        return Case.III
    return Case.II if gap >= 0 else Case.IV


def ess_backup(gap_w: int, stored_wh: int, capacity_wh: int = ESS_CAPACITY_WH, power_w: int = ESS_POWER_W) -> int:
    """What the ESS does in an hour with gap TG − TL: it discharges to cover a deficit and
    charges from a surplus, at most `power_w` and within what it holds / has room for."""
    if gap_w < 0:
        return min(-gap_w, power_w, stored_wh)
    return -min(gap_w, power_w, capacity_wh - stored_wh)


def split(total: int, weights: list[int]) -> list[int]:
    """`total` in integer shares proportional to `weights`, summing exactly to `total`
    (largest remainders first, ties to the lower index)."""
    if total == 0 or not weights:
        return [0] * len(weights)
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:total - sum(shares)]:
        shares[i] += 1
    return shares


@dataclass(frozen=True)
class Lot:
    seller: str
    """Whose energy it is (for RS1 the coordinator's pool)."""
    opener: str
    """Who opens its auction (owns it on chain)."""
    wh: int


@dataclass(frozen=True)
class HourPlan:
    hour: int
    generation_w: int
    load_w: int
    gap_w: int
    backup_w: int
    aided_w: int
    stored_wh: int
    """The ESS's charge at the end of the hour."""
    case: Case
    scheme: Scheme
    sellers: tuple[tuple[str, int], ...]
    """(agent, Wh) each selling in this hour."""
    buyers: tuple[tuple[str, int], ...]
    diesel_wh: int
    grid_import_wh: int
    grid_export_wh: int
    lots: tuple[Lot, ...]

    def need(self, agent: str) -> int:
        return dict(self.buyers).get(agent, 0)

    def supply(self, agent: str) -> int:
        return dict(self.sellers).get(agent, 0)


def households_of(profile: HourProfile, count: int) -> list[int]:
    """Each household's net (generation − load) in W."""
    if count < 1:
        raise ValueError("a VPP has at least one household")
    loads = split(profile.load_w, [9 + i for i in range(count)])
    if count == 1:
        return [profile.generation_w - loads[0]]
    wind_homes = list(range(0, count, 2))
    pv_homes = list(range(1, count, 2))
    generation = [0] * count
    for i, share in zip(wind_homes, split(profile.wind_w, [1] * len(wind_homes)), strict=True):
        generation[i] = share
    for i, share in zip(pv_homes, split(profile.generation_w - profile.wind_w, [1] * len(pv_homes)), strict=True):
        generation[i] = share
    return [g - load for g, load in zip(generation, loads, strict=True)]


def plan_day(households: int = 4, profile: tuple[HourProfile, ...] = PROFILE,
             stored_wh: int = ESS_START_WH) -> list[HourPlan]:
    """The day, hour by hour: ESS dispatch, case, scheme, who sells and buys, and the lots."""
    plans = []
    for hour in profile:
        gap = hour.generation_w - hour.load_w
        backup = ess_backup(gap, stored_wh)
        stored_wh -= backup
        aided = gap + backup
        case = classify(hour.generation_w, hour.load_w, backup)
        sellers: list[tuple[str, int]] = []
        buyers: list[tuple[str, int]] = []
        for i, net in enumerate(households_of(hour, households)):
            if net > 0:
                sellers.append((household(i), net))
            elif net < 0:
                buyers.append((household(i), -net))
        if backup > 0:
            sellers.append((ESS, backup))
        elif backup < 0:
            buyers.append((ESS, -backup))
        diesel = min(DIESEL_RATING_W, -aided) if aided < 0 else 0
        grid_import = -aided - diesel if aided < 0 else 0
        grid_export = aided if aided > 0 else 0
        if diesel:
            sellers.append((DIESEL, diesel))
        if grid_import:
            sellers.append((COORDINATOR, grid_import))
        if grid_export:
            buyers.append((COORDINATOR, grid_export))
        assert sum(wh for _, wh in sellers) == sum(wh for _, wh in buyers), hour
        scheme = SCHEME[case]
        if scheme is Scheme.RS1:
            lots = tuple(Lot(COORDINATOR, COORDINATOR, wh) for _, wh in buyers)
        elif scheme is Scheme.RS2:
            lots = tuple(Lot(who, who, wh) for who, wh in sellers)
        else:
            lots = tuple(Lot(who, COORDINATOR, wh) for who, wh in sellers)
        plans.append(HourPlan(hour.hour, hour.generation_w, hour.load_w, gap, backup, aided, stored_wh, case,
                              scheme, tuple(sellers), tuple(buyers), diesel, grid_import, grid_export, lots))
    return plans


# -- prices and bids --------------------------------------------------------------------------

def value_wei(wh: int, price_per_kwh: int) -> int:
    return max(wh * price_per_kwh // 1_000, 1)


def increment_of(lot_wh: int) -> int:
    return max(value_wei(lot_wh, GRID_PRICE_WEI_PER_KWH) * INCREMENT_PERCENT // 100, 1)


def lot_increment(plan: HourPlan, lot: Lot) -> int:
    """The bid increment of a lot's auction: `increment_of` its size, except under RS1, where the
    coordinator's schedule opens the hour's lots with one increment, that of their mean size."""
    if plan.scheme is Scheme.RS1:
        return increment_of(sum(x.wh for x in plan.lots) // len(plan.lots))
    return increment_of(lot.wh)


def valuation_per_kwh(plan: HourPlan, buyer: str) -> int:
    """What `buyer` pays at most per kWh in this hour (wei)."""
    if buyer == ESS:
        return GRID_PRICE_WEI_PER_KWH * ESS_VALUE_PERCENT // 100
    if buyer == COORDINATOR:
        return GRID_PRICE_WEI_PER_KWH * EXPORT_VALUE_PERCENT // 100
    homes = [wh for who, wh in plan.buyers if who.startswith("house")]
    low, high = HOUSEHOLD_VALUE_PERCENT
    percent = low + (high - low) * plan.need(buyer) // max(homes, default=1)
    return GRID_PRICE_WEI_PER_KWH * percent // 100


def wants(unmet_wh: int, lot: Lot, buyer: str) -> bool:
    """Whether a buyer with `unmet_wh` still to cover bids on `lot`."""
    return lot.opener != buyer and lot.seller != buyer and 2 * unmet_wh >= lot.wh > 0


@dataclass(frozen=True)
class Outcome:
    lot: Lot
    winner: str | None
    price: int
    """The binding bid, wei (0 when unsold)."""
    bids: int


def clear_hour(plan: HourPlan) -> list[Outcome]:
    """The hour's lots in order, each bid on once by every buyer that wants it (in the plan's
    buyer order) with its whole value, cleared by Algorithm 1 (`next_bid_state`)."""
    unmet = dict(plan.buyers)
    outcomes = []
    for lot in plan.lots:
        leader, highest, binding, bids = "", 0, 0, 0
        for buyer, _ in plan.buyers:
            if not wants(unmet[buyer], lot, buyer):
                continue
            total = value_wei(lot.wh, valuation_per_kwh(plan, buyer))
            if total <= binding:
                continue  # the contract refuses a total not above the binding bid
            bids += 1
            leader, highest, binding = next_bid_state(total, buyer, leader, highest, binding,
                                                       lot_increment(plan, lot))
        if leader:
            unmet[leader] = max(unmet[leader] - lot.wh, 0)
        outcomes.append(Outcome(lot, leader or None, binding, bids))
    return outcomes


def price_per_kwh(price_wei: int, wh: int) -> int:
    return price_wei * 1_000 // wh if wh else 0
