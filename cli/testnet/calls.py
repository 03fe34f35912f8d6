"""What the load sends: transfers, and with `load.market` a share of market calls, so the faults
meet the market's state transitions too (token escrow, the double auction's book and its
end-of-block clearing), not only balance moves.

A sender (a devnet prosumer, #k) places bids and asks in the double auction. Before its first
order it approves the auction for its fiat and its energy tokens; before any sender trades, each
sender's meter oracle (#19+k, as in the devnet genesis) posts a reading for the current slot and
mints that generation as the sender's energy tokens, which its asks then escrow. A call the
chain refuses (a revert: an ask sent before its mint landed) is a receipt with status 0, which
the checker holds every node to as to any other."""
from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from market.contracts.addresses import ENERGY_TOKEN, FIAT_TOKEN, METERS
from market.contracts.double_auction import DOUBLE_AUCTION

TRANSFER_GAS = 21_000
MARKET_GAS = 400_000
"""Above what any of these calls uses (an order that is its interval's last pays no clearing:
the clearing is the end-of-block hook's, not the sender's)."""
GENERATION_WH = 10**7
"""What each oracle reports and mints: enough for every ask a long soak places."""
ORDER_WH = (1, 2_000)
PRICE_PER_KWH = (100, 400)
"""Fiat base units per kWh: bids and asks overlap, so most clearings trade."""
UINT256_MAX = 2**256 - 1


@dataclass(frozen=True)
class Call:
    kind: str
    """transfer, reading, mint, approve, bid or ask."""
    to: str
    value: int = 0
    data: bytes = b""
    gas: int = TRANSFER_GAS


def abi_call(signature: str, *args) -> bytes:
    types = signature[signature.index("(") + 1:-1]
    return function_signature_to_4byte_selector(signature) + encode([t for t in types.split(",") if t], list(args))


class Workload:
    """Who sends next, and what. `senders` take turns; each oracle's two calls go first."""

    def __init__(self, senders: list, oracles: list, market: float, seed: int, slot: int) -> None:
        """`oracles[k]` is the meter oracle of `senders[k]` (used only when `market` > 0);
        `market` is the share of a sender's calls that are orders; `slot` the meter slot now."""
        self.senders = senders
        self.market = market
        self.random = random.Random(seed)
        self.first: deque = deque()
        self.setup: dict[str, deque] = {s.address: deque() for s in senders}
        if market > 0:
            for sender, oracle in zip(senders, oracles):
                self.first.append((oracle, Call("reading", METERS.to_checksum(), data=abi_call(
                    "postReading(address,uint64,uint256,uint256,uint256)", sender.address, slot, GENERATION_WH, 0, 0),
                    gas=MARKET_GAS)))
                self.first.append((oracle, Call("mint", ENERGY_TOKEN.to_checksum(), data=abi_call(
                    "mintWatts(address,uint256)", sender.address, GENERATION_WH), gas=MARKET_GAS)))
                self.setup[sender.address].extend(
                    Call("approve", token.to_checksum(), data=abi_call(
                        "approve(address,uint256)", DOUBLE_AUCTION.to_checksum(), UINT256_MAX), gas=MARKET_GAS)
                    for token in (FIAT_TOKEN, ENERGY_TOKEN))
        self.accounts = [o for _, o in zip(senders, oracles)] + list(senders) if market > 0 else list(senders)
        """Every account that sends: the checker reads their nonces."""
        self._turn = 0

    def next(self):
        """(account, Call) to send now."""
        if self.first:
            return self.first.popleft()
        sender = self.senders[self._turn % len(self.senders)]
        self._turn += 1
        if self.random.random() >= self.market:
            others = [a.address for a in self.senders if a.address != sender.address] or [sender.address]
            return sender, Call("transfer", self.random.choice(others), value=self.random.randint(1, 10**6))
        if self.setup[sender.address]:
            return sender, self.setup[sender.address].popleft()
        side = self.random.choice(("bid", "ask"))
        signature = "placeBid(uint256,uint256)" if side == "bid" else "placeAsk(uint256,uint256)"
        return sender, Call(side, DOUBLE_AUCTION.to_checksum(), gas=MARKET_GAS, data=abi_call(
            signature, self.random.randint(*ORDER_WH), self.random.randint(*PRICE_PER_KWH)))

    def requeue(self, account, call: Call) -> None:
        """A setup call (reading, mint, approve) the node refused goes again: the orders need it."""
        if call.kind in ("reading", "mint"):
            self.first.appendleft((account, call))
        elif call.kind == "approve":
            self.setup[account.address].appendleft(call)
