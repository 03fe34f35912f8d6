"""The seller agent (paper 002's SA): once per hour, while the negotiation is open, it puts its
surplus energy tokens on offer for the next hour, at its price (fiat base units per kWh), expiring at the end of that
hour; afterwards it winds the offer up (see SellingAgent).

Surplus = the prosumer's energy-token balance (minted by its meter oracle against metered
generation) less what it keeps for itself (`keep_wh`); below `min_offer_wh` it waits."""
from __future__ import annotations

from market.agents.book import SellingAgent
from market.agents.client import MarketClient, Reporter
from market.agents.schedule import NEGOTIATE, HourlyBatch

DEFAULT_PRICE_PER_KWH = 25
"""0.25 GUSD/kWh (fiat base units per kWh): a prosumer undercutting the grid's 0.30."""


class SellerAgent(SellingAgent):
    kind = "seller"

    def __init__(self, client: MarketClient, schedule: HourlyBatch, report: Reporter,
                 price_per_kwh: int = DEFAULT_PRICE_PER_KWH, keep_wh: int = 0, min_offer_wh: int = 1) -> None:
        super().__init__(client, schedule, report)
        if price_per_kwh < 1:
            raise ValueError("the price is at least 1 fiat base unit per kWh")
        if keep_wh < 0 or min_offer_wh < 1:
            raise ValueError("keep_wh is at least 0 and min_offer_wh at least 1")
        self.price_per_kwh = price_per_kwh
        self.keep_wh = keep_wh
        self.min_offer_wh = min_offer_wh
        self.offered_hours: set[int] = set()

    def step(self, timestamp: int) -> None:
        hour = self.schedule.hour_of(timestamp)
        phase = self.schedule.phase(timestamp)
        if phase == NEGOTIATE and hour not in self.offered_hours:
            surplus = self.client.view("EnergyToken", "balanceOf", self.client.address) - self.keep_wh
            if surplus >= self.min_offer_wh:
                self.publish(surplus, self.price_per_kwh, self.schedule.delivery_expiry(hour))
                self.offered_hours.add(hour)
        self.follow_allocations()
        self.settle(timestamp, confirm_phase=phase != NEGOTIATE)
