"""Paper 004's English auctions as a wallet sees them: open one through the AuctionFactory,
read it, bid, withdraw. Shared by the running schemes (RS1 `gridnode market operator`, RS2
an agent's own auction, RS3 bidders reading the factory) and the VPP simulation."""
from __future__ import annotations

from dataclasses import dataclass

from market.agents.client import MarketClient

FACTORY = "AuctionFactory"
AUCTION = "EnglishAuction"
GETTERS = ("owner", "bidIncrement", "startBlock", "endBlock", "canceled", "ownerHasWithdrawn",
           "highestBid", "highestBindingBid", "highestBidder")


@dataclass(frozen=True)
class AuctionView:
    address: str
    owner: str
    bid_increment: int
    start_block: int
    end_block: int
    canceled: bool
    owner_has_withdrawn: bool
    highest_bid: int
    highest_binding_bid: int
    highest_bidder: str

    def open_at(self, block: int) -> bool:
        """Whether a bid mined in `block` can be accepted (Algorithm 1's onlyAfterStart/onlyBeforeEnd)."""
        return not self.canceled and self.start_block <= block <= self.end_block


def instance(address: str) -> str:
    """The MarketClient name of the auction at `address`."""
    return f"{AUCTION}@{address}"


def open_auction(client: MarketClient, bid_increment: int, start_block: int, end_block: int,
                 energy_wh: int = 0) -> str:
    """Create an auction owned by the client's account; returns its address. With `energy_wh`,
    the auction escrows that many of the account's energy tokens for its winner (the factory's
    allowance is raised first if it is short)."""
    if not energy_wh:
        receipt = client.send(FACTORY, "createAuction", bid_increment, start_block, end_block)
    else:
        factory = client.contract(FACTORY).address
        if client.view("EnergyToken", "allowance", client.address, factory) < energy_wh:
            client.send("EnergyToken", "approve", factory, energy_wh)
        receipt = client.send(FACTORY, "createAuctionWithEnergy", bid_increment, start_block, end_block, energy_wh)
    return client.event(receipt, FACTORY, "AuctionCreated")["auction"]


def settle_energy(client: MarketClient, address: str):
    """Hand an ended auction's energy lot to its winner (or back to its owner)."""
    return client.send(instance(address), "settleEnergy")


def read_auction(client: MarketClient, address: str) -> AuctionView:
    values = [client.view(instance(address), getter) for getter in GETTERS]
    return AuctionView(address, *values)


def auctions_of(client: MarketClient, owner: str) -> list[str]:
    return list(client.view(FACTORY, "auctionsOf", owner))


def all_auctions(client: MarketClient) -> list[str]:
    return [client.view(FACTORY, "auctionAt", i) for i in range(client.view(FACTORY, "auctionCount"))]


def place_bid(client: MarketClient, address: str, value: int):
    """Add `value` wei to the client's total in the auction; AgentError with the reason if refused."""
    return client.send(instance(address), "placeBid", value=value)


def withdraw(client: MarketClient, address: str):
    return client.send(instance(address), "withdraw")


def funds_of(client: MarketClient, address: str, bidder: str | None = None) -> int:
    return client.view(instance(address), "fundsByBidder", bidder or client.address)
