"""The Offers contract as the agents see it: offers and allocations read into records, and
the settlement duties a seller (or the operator, who sells too) has once its offers expire."""
from __future__ import annotations

from dataclasses import dataclass

from market.agents.client import Agent

ALLOCATED, ESCROWED, COMPLETED, REFUNDED = 1, 2, 3, 4
"""Offers' allocation status codes (market/contracts/offers.py: Status)."""


@dataclass(frozen=True)
class Offer:
    offer_id: int
    seller: str
    amount_wh: int
    remaining_wh: int
    price_per_kwh: int
    """Fiat base units per kWh (25 = 0.25 GUSD/kWh)."""
    expiry: int
    open: bool


@dataclass(frozen=True)
class Allocation:
    allocation_id: int
    offer_id: int
    buyer: str
    amount_wh: int
    amount_fiat: int
    status: int


def read_offer(agent: Agent, offer_id: int) -> Offer:
    return Offer(offer_id, *agent.client.view("Offers", "offer", offer_id))


def read_allocation(agent: Agent, allocation_id: int) -> Allocation:
    offer_id, buyer, amount_wh, amount_fiat, _baseline, status = agent.client.view(
        "Offers", "allocation", allocation_id)
    return Allocation(allocation_id, offer_id, buyer, amount_wh, amount_fiat, status)


class SellingAgent(Agent):
    """Puts energy tokens on offer, and after each offer's expiry takes back what was not
    sold: the unallocated remainder (cancelOffer) and allocations never settled (refund).
    In the confirm phase it settles allocations its buyers have not (makeTransaction): the
    meter, not the caller, decides whether they are delivered."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.offers: dict[int, Offer] = {}
        """My offers not yet wound up."""
        self.allocations: dict[int, Allocation] = {}
        """Allocations of my offers not yet completed or refunded."""
        self.wound_up: set[int] = set()
        """Expired offers whose unallocated rest is back (waiting for their allocations to end)."""
        self.allocation_cursor = self.client.view("Offers", "allocationCount")

    def publish(self, amount_wh: int, price_per_kwh: int, expiry: int) -> Offer:
        self.client.send("EnergyToken", "approve", self.client.contract("Offers").address, amount_wh)
        receipt = self.client.send("Offers", "makeOffer", amount_wh, price_per_kwh, expiry)
        offer_id = self.client.event(receipt, "Offers", "OfferMade")["offerId"]
        offer = read_offer(self, offer_id)
        self.offers[offer_id] = offer
        self.report("offer_made", offerId=offer_id, amountWh=amount_wh, pricePerKWh=price_per_kwh,
                    expiry=expiry)
        return offer

    def follow_allocations(self) -> None:
        count = self.client.view("Offers", "allocationCount")
        for allocation_id in range(self.allocation_cursor, count):
            allocation = read_allocation(self, allocation_id)
            if allocation.offer_id in self.offers:
                self.allocations[allocation_id] = allocation
                self.report("energy_allocated", allocationId=allocation_id, offerId=allocation.offer_id,
                            buyer=allocation.buyer, amountWh=allocation.amount_wh, amountFiat=allocation.amount_fiat)
        self.allocation_cursor = count

    def settle(self, timestamp: int, confirm_phase: bool) -> None:
        """Settle delivered allocations (in the confirm phase), then wind up expired offers."""
        for allocation_id in sorted(self.allocations):
            allocation = read_allocation(self, allocation_id)
            offer = self.offers[allocation.offer_id]
            if allocation.status in (COMPLETED, REFUNDED):
                self.report("allocation_settled" if allocation.status == COMPLETED else "allocation_refunded",
                            allocationId=allocation_id, amountWh=allocation.amount_wh,
                            amountFiat=allocation.amount_fiat)
                del self.allocations[allocation_id]
            elif timestamp > offer.expiry:
                self.try_send("Offers", "refund", allocation_id)
            elif confirm_phase and allocation.status == ESCROWED \
                    and self.client.view("Offers", "deliveryOf", allocation_id)[1] \
                    and self.try_send("Offers", "makeTransaction", allocation_id):
                self.report("transaction_made", allocationId=allocation_id, amountWh=allocation.amount_wh,
                            amountFiat=allocation.amount_fiat)
        for offer_id in sorted(self.offers):
            offer = self.offers[offer_id]
            if timestamp <= offer.expiry:
                continue
            if offer_id not in self.wound_up:
                current = read_offer(self, offer_id)
                if current.open:
                    if not self.try_send("Offers", "cancelOffer", offer_id):
                        continue  # retried next round
                    self.report("offer_cancelled", offerId=offer_id, returnedWh=current.remaining_wh)
                self.wound_up.add(offer_id)
                self.on_returned(current, current.remaining_wh if current.open else 0)
            if not any(a.offer_id == offer_id for a in self.allocations.values()):
                del self.offers[offer_id]
                self.wound_up.discard(offer_id)

    def on_returned(self, offer: Offer, wh: int) -> None:
        """An offer expired and its unallocated rest `wh` (0 if all was allocated) came back; once
        per offer (the operator burns it)."""
