"""The buyer agent (paper 002's BA): each hour, during the negotiation, it buys the energy it
will need in the next hour from the cheapest offers on chain (lowest price per kWh first, then
the oldest offer) until its demand is met
(allocateEnergy, then allowTransaction to escrow the fiat); once its meter shows the energy
delivered it settles (makeTransaction), and after an offer's expiry it takes back the escrow
of anything not delivered (refund).

It waits `buy_after_minute` minutes into the hour before buying, so the sellers' offers of the
hour are on chain and the cheapest are the ones it sees."""
from __future__ import annotations

from market.agents.book import ALLOCATED, COMPLETED, ESCROWED, REFUNDED, Allocation, read_allocation, read_offer
from market.agents.client import Agent, AgentError, MarketClient, Reporter
from market.agents.schedule import NEGOTIATE, HourlyBatch
from market.contracts.offers import WH_PER_KWH


def affordable_wh(funds: int, price_per_kwh: int) -> int:
    """The most Wh whose cost, ceil(wh · price / 1000) base units (Offers' cost_of), `funds` pay for."""
    return funds * WH_PER_KWH // price_per_kwh


class BuyerAgent(Agent):
    kind = "buyer"

    def __init__(self, client: MarketClient, schedule: HourlyBatch, report: Reporter, demand_wh: int,
                 max_price_per_kwh: int | None = None, buy_after_minute: int = 0) -> None:
        super().__init__(client, schedule, report)
        if demand_wh < 1:
            raise ValueError("the demand is at least 1 Wh per hour")
        if not 0 <= buy_after_minute < schedule.negotiate_minutes:
            raise ValueError(f"buy_after_minute must fall in the negotiation (0..{schedule.negotiate_minutes - 1})")
        self.demand_wh = demand_wh
        if max_price_per_kwh is not None and max_price_per_kwh < 1:
            raise ValueError("the highest price is at least 1 fiat base unit per kWh")
        self.max_price = max_price_per_kwh
        """Fiat base units per kWh, or None: any price."""
        self.buy_after_minute = buy_after_minute
        self.bought: dict[int, int] = {}
        """Wh allocated, by the hour they were negotiated in."""
        self.allocations: dict[int, int] = {}
        """My unsettled allocations → their offer's expiry."""

    def step(self, timestamp: int) -> None:
        hour = self.schedule.hour_of(timestamp)
        if (self.schedule.phase(timestamp) == NEGOTIATE
                and self.schedule.minute_of(timestamp) >= self.buy_after_minute
                and self.bought.get(hour, 0) < self.demand_wh):
            self.buy(hour, timestamp)
        self.settle(timestamp)

    def buy(self, hour: int, timestamp: int) -> None:
        me = self.client.address
        candidates = [read_offer(self, offer_id) for offer_id in self.client.view("Offers", "openOffers")]
        usable = sorted((o for o in candidates
                         if o.seller != me and o.open and o.remaining_wh > 0
                         and o.expiry >= self.schedule.hour_start(hour + 1)
                         and (self.max_price is None or o.price_per_kwh <= self.max_price)),
                        key=lambda o: (o.price_per_kwh, o.offer_id))
        for offer in usable:
            need = self.demand_wh - self.bought.get(hour, 0)
            if need <= 0:
                break
            funds = self.client.view("FiatToken", "balanceOf", me)
            take = min(need, offer.remaining_wh, affordable_wh(funds, offer.price_per_kwh))
            if take == 0:
                self.report("insufficient_fiat", balance=funds, pricePerKWh=offer.price_per_kwh)
                return
            try:
                receipt = self.client.send("Offers", "allocateEnergy", offer.offer_id, take)
            except AgentError as exc:  # another buyer took it first, or it just expired
                self.report("skipped", call="Offers.allocateEnergy", args=[offer.offer_id, take], reason=str(exc))
                continue
            allocation_id = self.client.event(receipt, "Offers", "EnergyAllocated")["allocationId"]
            allocation = read_allocation(self, allocation_id)
            self.allocations[allocation_id] = offer.expiry
            self.bought[hour] = self.bought.get(hour, 0) + take
            self.report("energy_allocated", allocationId=allocation_id, offerId=offer.offer_id,
                        seller=offer.seller, amountWh=take, pricePerKWh=offer.price_per_kwh,
                        amountFiat=allocation.amount_fiat, forHour=hour + 1)
            self.escrow(allocation)

    def escrow(self, allocation: Allocation) -> None:
        self.client.send("FiatToken", "approve", self.client.contract("Offers").address, allocation.amount_fiat)
        self.client.send("Offers", "allowTransaction", allocation.allocation_id)
        self.report("transaction_allowed", allocationId=allocation.allocation_id, amountFiat=allocation.amount_fiat)

    def settle(self, timestamp: int) -> None:
        for allocation_id in sorted(self.allocations):
            expiry = self.allocations[allocation_id]
            allocation = read_allocation(self, allocation_id)
            if allocation.status in (COMPLETED, REFUNDED):
                self.report("allocation_settled" if allocation.status == COMPLETED else "allocation_refunded",
                            allocationId=allocation_id, amountWh=allocation.amount_wh,
                            amountFiat=allocation.amount_fiat)
                del self.allocations[allocation_id]
            elif timestamp > expiry:
                self.try_send("Offers", "refund", allocation_id)
            elif allocation.status == ALLOCATED:
                self.escrow(allocation)  # an escrow that failed earlier (e.g. the approve did not land)
            elif allocation.status == ESCROWED:
                _metered, confirmed = self.client.view("Offers", "deliveryOf", allocation_id)
                if confirmed and self.try_send("Offers", "makeTransaction", allocation_id):
                    self.report("transaction_made", allocationId=allocation_id, amountWh=allocation.amount_wh,
                                amountFiat=allocation.amount_fiat)
