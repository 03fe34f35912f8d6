"""The open English auction of paper 004 (§IV-A, Algorithm 1), with the ABI a Solidity
developer writes for it, so a dApp written against the Solidity contract works unchanged.

An auction is an instance: `AuctionFactory.createAuction` makes one at a deterministic
address and initialises it at once (`initialize`, callable only by that factory, once), so
there is no window in which anyone else could claim it. Its state:

- `owner` (who asked the factory; it never bids), `bidIncrement` (wei), `startBlock` and
  `endBlock`: bids are accepted in blocks startBlock..endBlock inclusive;
- `fundsByBidder(a)`: every wei `a` has sent and not yet withdrawn. Bids are cumulative: a
  bidder tops up its total with another `placeBid()`;
- `highestBidder`, `highestBid` (its total when it took the lead, or raised it) and
  `highestBindingBid`: what the winner pays, Algorithm 1's highestBidLevel. A new total
  `b` must be above the binding bid; then, with `h` the highest bid and `i` the increment,
    b <= h:                 binding = min(b + i, h)          (the leader stays, its price rises)
    b > h, a new leader:    binding = min(b, h + i); leader = sender; highest = b
    b > h, the leader:      highest = b                      (raising its own ceiling costs it nothing)

Rejections, each with its reason: before the start block (`auction: not started`), after the
end block (`auction: ended`), once cancelled (`auction: canceled`), zero value (`auction: zero
bid`), a total not above the binding bid (`auction: bid too low`, the only rejection an
honest bidder meets), and always for the owner (`auction: owner cannot bid`).

Withdrawal is by pull, after the end block (block number > endBlock) or after a cancel:
the owner gets the binding bid (taken from the winner's funds), the winner the rest of its
funds, every other bidder all of its funds; after a cancel everyone gets all of its funds.
What was paid is taken from `fundsByBidder` before the elecoins leave, so nothing is paid
twice (`auction: nothing to withdraw`). Hence the auction's elecoin balance always equals the
sum of `fundsByBidder`, and it is zero once every party has withdrawn.

The owner may cancel until the end block (inclusive). Amounts are elecoin wei, integers.
An instance that was never initialised (none is: the factory initialises in the same call
that creates it) refuses everything: its end block 0 is past, it has no owner and no funds.

Energy (optional, beyond the paper): an auction opened with `createAuctionWithEnergy` holds
`energyWh` energy tokens, escrowed from the owner by the factory, so the winner actually
receives the energy it bid for. Once the auction is over (after the end block, or cancelled)
anyone may call `settleEnergy()`, once: the energy goes to the highest bidder, or back to the
owner when the auction was cancelled or nobody bid (`LogEnergySettled(to, energyWh)`).

Two deliberate differences from the Solidity original (the paper's reference contract):
withdrawal opens only after the end block rather than at it, so the owner cannot be paid
from a leader that a bid later in the same block displaces; and the owner's second
withdrawal is refused instead of underflowing."""
from __future__ import annotations

from vm.crypto import keccak256
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.storage import Mapping, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

FACTORY = Value(b"auction.factory", "address")
OWNER = Value(b"auction.owner", "address")
INCREMENT = Value(b"auction.bidIncrement", "uint256")
START = Value(b"auction.startBlock", "uint256")
END = Value(b"auction.endBlock", "uint256")
CANCELED = Value(b"auction.canceled", "bool")
OWNER_WITHDRAWN = Value(b"auction.ownerHasWithdrawn", "bool")
HIGHEST_BID = Value(b"auction.highestBid", "uint256")
BINDING_BID = Value(b"auction.highestBindingBid", "uint256")
HIGHEST_BIDDER = Value(b"auction.highestBidder", "address")
FUNDS = Mapping(b"auction.fundsByBidder", "uint256")
ENERGY_TOKEN = Value(b"auction.energyToken", "address")
ENERGY_WH = Value(b"auction.energyWh", "uint256")
ENERGY_SETTLED = Value(b"auction.energySettled", "bool")

PLACE_BID = keccak256(b"placeBid()")[:4]
"""The selector of `placeBid()`: how a block producer recognises a bid in its pool."""



def next_bid_state(total: int, bidder: Address, leader: Address, highest: int, binding: int,
                   increment: int) -> tuple[Address, int, int]:
    """Algorithm 1 as a pure function: a bidder whose funds become `total` (already checked
    above `binding`) against the leader, highest bid and binding bid; returns the new
    (leader, highest bid, binding bid)."""
    if total <= highest:
        return leader, highest, min(total + increment, highest)
    if bidder != leader:
        return bidder, total, min(total, highest + increment)
    return leader, total, binding


class EnglishAuction(NativeContract):
    name = "EnglishAuction"
    abi_file = "auction.abi.json"
    default_address = None
    """An instance-only kind: auctions exist only where a factory created them."""

    # -- gas-free reader (RPC, CLI, tests) ---------------------------------------------------
    @staticmethod
    def read(state: State, auction: Address) -> dict:
        """The auction's public state at `auction`, without gas."""
        return {"owner": OWNER.read(state, auction), "factory": FACTORY.read(state, auction),
                "bidIncrement": INCREMENT.read(state, auction), "startBlock": START.read(state, auction),
                "endBlock": END.read(state, auction), "canceled": CANCELED.read(state, auction),
                "ownerHasWithdrawn": OWNER_WITHDRAWN.read(state, auction),
                "highestBid": HIGHEST_BID.read(state, auction),
                "highestBindingBid": BINDING_BID.read(state, auction),
                "highestBidder": HIGHEST_BIDDER.read(state, auction),
                "energyWh": ENERGY_WH.read(state, auction), "energySettled": ENERGY_SETTLED.read(state, auction)}

    @staticmethod
    def funds_at(state: State, auction: Address, bidder: Address) -> int:
        return FUNDS.read(state, auction, bidder)

    @staticmethod
    def bid_total(state: State, auction: Address, bidder: Address, value: int) -> int:
        """The total a `placeBid()` carrying `value` from `bidder` would make: the key by which
        a producer may order one auction's bids within a block (ascending), so that every bid
        that tops the one before it lands."""
        return FUNDS.read(state, auction, bidder) + value

    # -- set-up by the factory -------------------------------------------------------------
    @abi_function("initialize")
    def _initialize(self, ctx: CallContext, owner: str, increment: int, start: int, end: int) -> None:
        """The paper's constructor checks: an owner, start before end, an end still ahead."""
        if Address.from_hex(FACTORY.get(ctx)) != ZERO_ADDRESS:
            raise Revert("auction: already initialized")
        if not ctx.state.get_code(ctx.caller):
            raise Revert("auction: caller is not the factory")
        if Address.from_hex(owner) == ZERO_ADDRESS:
            raise Revert("auction: owner is the zero address")
        if start >= end:
            raise Revert("auction: start block is not before the end block")
        if end <= ctx.block_number:
            raise Revert("auction: end block is not in the future")
        FACTORY.set(ctx, ctx.caller.to_checksum())
        OWNER.set(ctx, owner)
        INCREMENT.set(ctx, increment)
        START.set(ctx, start)
        END.set(ctx, end)

    @abi_function("attachEnergy")
    def _attach_energy(self, ctx: CallContext, token: str, wh: int) -> None:
        """The factory, right after `initialize` and the escrow transfer, records the lot."""
        if ctx.caller != Address.from_hex(FACTORY.get(ctx)):
            raise Revert("auction: caller is not the factory")
        if ENERGY_WH.get(ctx):
            raise Revert("auction: energy already attached")
        if wh == 0:
            raise Revert("auction: zero energy")
        ENERGY_TOKEN.set(ctx, token)
        ENERGY_WH.set(ctx, wh)

    @abi_function("settleEnergy")
    def _settle_energy(self, ctx: CallContext) -> bool:
        wh = ENERGY_WH.get(ctx)
        if wh == 0:
            raise Revert("auction: no energy on sale")
        canceled = CANCELED.get(ctx)
        if not canceled and ctx.block_number <= END.get(ctx):
            raise Revert("auction: not ended")
        if ENERGY_SETTLED.get(ctx):
            raise Revert("auction: energy already settled")
        winner = Address.from_hex(HIGHEST_BIDDER.get(ctx))
        to = Address.from_hex(OWNER.get(ctx)) if canceled or winner == ZERO_ADDRESS else winner
        ENERGY_SETTLED.set(ctx, True)
        self.emit(ctx, "LogEnergySettled", to.to_checksum(), wh)
        (ok,) = self.invoke(ctx, Address.from_hex(ENERGY_TOKEN.get(ctx)), "transfer(address,uint256)",
                            (to.to_checksum(), wh), ("bool",))
        if not ok:
            raise Revert("auction: energy transfer failed")
        return True

    # -- bidding ---------------------------------------------------------------------------
    @abi_function("placeBid")
    def _place_bid(self, ctx: CallContext) -> bool:
        if ctx.block_number < START.get(ctx):
            raise Revert("auction: not started")
        if ctx.block_number > END.get(ctx):
            raise Revert("auction: ended")
        if CANCELED.get(ctx):
            raise Revert("auction: canceled")
        if ctx.caller == Address.from_hex(OWNER.get(ctx)):
            raise Revert("auction: owner cannot bid")
        if ctx.value == 0:
            raise Revert("auction: zero bid")
        total = FUNDS.get(ctx, ctx.caller) + ctx.value
        binding = BINDING_BID.get(ctx)
        if total <= binding:
            raise Revert("auction: bid too low")
        leader, highest, binding = next_bid_state(total, ctx.caller, Address.from_hex(HIGHEST_BIDDER.get(ctx)),
                                                  HIGHEST_BID.get(ctx), binding, INCREMENT.get(ctx))
        FUNDS.set(ctx, ctx.caller, total)
        HIGHEST_BIDDER.set(ctx, leader.to_checksum())
        HIGHEST_BID.set(ctx, highest)
        BINDING_BID.set(ctx, binding)
        self.emit(ctx, "LogBid", ctx.caller.to_checksum(), total, leader.to_checksum(), highest, binding)
        return True

    # -- withdrawal by pull ----------------------------------------------------------------
    @abi_function("withdraw")
    def _withdraw(self, ctx: CallContext) -> bool:
        canceled = CANCELED.get(ctx)
        if not canceled and ctx.block_number <= END.get(ctx):
            raise Revert("auction: not ended")
        caller = ctx.caller
        if canceled:
            account, amount = caller, FUNDS.get(ctx, caller)
        elif caller == Address.from_hex(OWNER.get(ctx)):
            account = Address.from_hex(HIGHEST_BIDDER.get(ctx))
            amount = 0 if OWNER_WITHDRAWN.get(ctx) else BINDING_BID.get(ctx)
            if amount:
                OWNER_WITHDRAWN.set(ctx, True)
        elif caller == Address.from_hex(HIGHEST_BIDDER.get(ctx)):
            account = caller
            funds = FUNDS.get(ctx, caller)
            amount = funds if OWNER_WITHDRAWN.get(ctx) else funds - BINDING_BID.get(ctx)
        else:
            account, amount = caller, FUNDS.get(ctx, caller)
        if amount <= 0:
            raise Revert("auction: nothing to withdraw")
        FUNDS.set(ctx, account, FUNDS.get(ctx, account) - amount)
        self.emit(ctx, "LogWithdrawal", caller.to_checksum(), account.to_checksum(), amount)
        ctx.call(ctx.caller, b"", value=amount)
        return True

    # -- control -----------------------------------------------------------------------------
    @abi_function("cancelAuction")
    def _cancel(self, ctx: CallContext) -> bool:
        if ctx.caller != Address.from_hex(OWNER.get(ctx)):
            raise Revert("auction: caller is not the owner")
        if ctx.block_number > END.get(ctx):
            raise Revert("auction: ended")
        if CANCELED.get(ctx):
            raise Revert("auction: canceled")
        CANCELED.set(ctx, True)
        self.emit(ctx, "LogCanceled")
        return True

    # -- public getters --------------------------------------------------------------------------
    @abi_function("owner")
    def _owner(self, ctx: CallContext) -> str:
        return OWNER.get(ctx)

    @abi_function("bidIncrement")
    def _bid_increment(self, ctx: CallContext) -> int:
        return INCREMENT.get(ctx)

    @abi_function("startBlock")
    def _start_block(self, ctx: CallContext) -> int:
        return START.get(ctx)

    @abi_function("endBlock")
    def _end_block(self, ctx: CallContext) -> int:
        return END.get(ctx)

    @abi_function("canceled")
    def _canceled(self, ctx: CallContext) -> bool:
        return CANCELED.get(ctx)

    @abi_function("ownerHasWithdrawn")
    def _owner_has_withdrawn(self, ctx: CallContext) -> bool:
        return OWNER_WITHDRAWN.get(ctx)

    @abi_function("highestBid")
    def _highest_bid(self, ctx: CallContext) -> int:
        return HIGHEST_BID.get(ctx)

    @abi_function("highestBindingBid")
    def _highest_binding_bid(self, ctx: CallContext) -> int:
        return BINDING_BID.get(ctx)

    @abi_function("highestBidder")
    def _highest_bidder(self, ctx: CallContext) -> str:
        return HIGHEST_BIDDER.get(ctx)

    @abi_function("energyWh")
    def _energy_wh(self, ctx: CallContext) -> int:
        return ENERGY_WH.get(ctx)

    @abi_function("energyToken")
    def _energy_token(self, ctx: CallContext) -> str:
        return ENERGY_TOKEN.get(ctx)

    @abi_function("energySettled")
    def _energy_settled(self, ctx: CallContext) -> bool:
        return ENERGY_SETTLED.get(ctx)

    @abi_function("fundsByBidder")
    def _funds_by_bidder(self, ctx: CallContext, bidder: str) -> int:
        return FUNDS.get(ctx, Address.from_hex(bidder))
