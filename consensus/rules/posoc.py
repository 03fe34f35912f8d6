"""Proof of state of charge and the V2V mining fee (thesis §4.2.1, §4.3.4–4.3.5).

An EV's proof score grows with what it discharges at peak prices and with the battery room
it leaves when it departs (eq. 4.1); the mLAG for the next 24-hour window is drawn in
proportion to the window's score (4.17–4.18). This is the integer form (Wh, δ in ppm, floored
products) the chain recomputes; the float form that feeds the learner is `market.economics.posoc`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from consensus.sampling import weighted_choice

Band = Literal["off", "mid", "on"]
PPM = 1_000_000


def band(hour: int) -> Band:
    """Ontario time-of-use bands (Toronto Hydro, the thesis's price source [161]): on-peak
    7–11 h and 17–19 h, mid-peak 11–17 h, off-peak 19–7 h. Table 4.1 prints "1am–11am" for
    on-peak, which overlaps off-peak; we read it as the published 7–11 h."""
    hour %= 24
    if 11 <= hour < 17:
        return "mid"
    if 7 <= hour < 11 or 17 <= hour < 19:
        return "on"
    return "off"


def price_factor_ppm(price: int, off_price: int) -> int:
    """δ_mid or δ_on (eqs. 4.3–4.4) in ppm from integer prices: the rise of a band's price over
    off-peak, relative to off-peak, kept in [0, 1] as eq. 4.2 requires (δ_off is 0)."""
    return min(PPM, max(0, (price - off_price) * PPM // off_price))


def hour_score_int(delta_ppm: int, discharged_wh: int, charged_wh: int, soc_ppm: int, departing: bool,
                   soc_max_ppm: int, capacity_wh: int) -> int:
    """𝒫𝒮_i for one hour (eq. 4.1) in Wh, δ and SOC in ppm: δ(𝒟 − 𝒞), plus the room
    (SOC^max − SOC) left in the battery, times its capacity, when the EV departs."""
    score = delta_ppm * (discharged_wh - charged_wh) // PPM
    return score + (soc_max_ppm - soc_ppm) * capacity_wh // PPM if departing else score


def choose_aggregator(window_scores_wh: Sequence[int], seed: bytes) -> int:
    """The mLAG for the next window (eq. 4.18): weighted random sampling over the 24-hour
    scores (4.17). Charging can make a score negative; negative scores weigh as zero and every
    EV keeps a 1 Wh floor, so each EV has some chance, as Algorithm 2 intends."""
    return weighted_choice([max(score, 0) + 1 for score in window_scores_wh], seed)


@dataclass(frozen=True)
class FeeBook:
    """Mining fees owed by each EV and the trading profits held back until they are paid."""

    owed: tuple[int, ...]
    held: tuple[int, ...]


def open_book(evs: int) -> FeeBook:
    return FeeBook((0,) * evs, (0,) * evs)


def charge_fees(book: FeeBook, profits: Sequence[int], beta_ppm: int) -> tuple[FeeBook, int]:
    """ℳ_r = Σ β·R_i (eq. 4.20): each EV owes β of a positive profit (a loss owes nothing).
    Returns the book and the reward due to the mLAG."""
    if not 0 < beta_ppm <= PPM:
        raise ValueError("β must lie in (0, 1]")
    fees = [beta_ppm * max(p, 0) // PPM for p in profits]
    return replace(book, owed=tuple(o + f for o, f in zip(book.owed, fees))), sum(fees)


def credit_profit(book: FeeBook, ev: int, profit: int) -> tuple[FeeBook, int]:
    """Pay an EV its trading profit, unless it owes fees: then the contract confiscates the
    profit until the fees are paid (§4.3.5, Fig. 4.5). Returns the book and the amount paid out."""
    if book.owed[ev] == 0:
        return book, profit
    held = list(book.held)
    held[ev] += profit
    return replace(book, held=tuple(held)), 0


def pay_fee(book: FeeBook, ev: int, amount: int) -> tuple[FeeBook, int]:
    """An EV pays towards its fees; once nothing is owed its held profit is released.
    Returns the book and the amount released."""
    if amount < 0:
        raise ValueError("a payment cannot be negative")
    owed, held = list(book.owed), list(book.held)
    owed[ev] = max(0, owed[ev] - amount)
    released = 0
    if owed[ev] == 0:
        released, held[ev] = held[ev], 0
    return FeeBook(tuple(owed), tuple(held)), released
