"""The auction factory of paper 004's running schemes (§IV-C, RS3; RS1 and RS2 call it too).

`createAuction(bidIncrement, startBlock, endBlock)` makes an `EnglishAuction` instance at a
deterministic address (the last 20 bytes of keccak(factory ‖ n) for the factory's n-th
auction, as CREATE derives addresses) and initialises it in the same call, with the caller
as its owner: no deployment gas, and no moment at which the instance is unclaimed. The
auction's own checks (start before end, end still ahead) revert the whole creation with the
auction's reason. Anyone may open an auction; who may bid is the auction's business.

Queries: `auctionCount()`, `auctionAt(i)` in creation order, `auctionsOf(owner)` (every
auction that owner opened, in creation order). Each creation logs
`AuctionCreated(auction, owner)`, both indexed."""
from __future__ import annotations

from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.storage import Array, Mapping
from vm.state import State
from vm.types import Address

AUCTION_FACTORY = Address(b"grid" + (0x16).to_bytes(16, "big"))

AUCTIONS = Array(b"factory.auctions", "address")             # every auction, in creation order
OWNED_COUNT = Mapping(b"factory.ownedCount", "uint256")      # owner -> how many it opened
OWNED = Mapping(b"factory.owned", "address")                 # (owner, i) -> its i-th auction


class AuctionFactory(NativeContract):
    name = "AuctionFactory"
    abi_file = "auction_factory.abi.json"
    default_address = AUCTION_FACTORY
    instance_kinds = ("EnglishAuction",)

    # -- gas-free readers (RPC, CLI, tests) ----------------------------------------------------
    @staticmethod
    def auctions_at(state: State, factory: Address) -> list[Address]:
        return [Address.from_hex(AUCTIONS.read(state, factory, i)) for i in range(AUCTIONS.read_length(state, factory))]

    @abi_function("createAuction")
    def _create_auction(self, ctx: CallContext, increment: int, start: int, end: int) -> str:
        owner = ctx.caller.to_checksum()
        auction = ctx.contracts.create(ctx, "EnglishAuction")
        self.invoke(ctx, auction, "initialize(address,uint256,uint256,uint256)", (owner, increment, start, end))
        AUCTIONS.push(ctx, auction.to_checksum())
        count = OWNED_COUNT.get(ctx, ctx.caller)
        OWNED.set(ctx, ctx.caller, count, auction.to_checksum())
        OWNED_COUNT.set(ctx, ctx.caller, count + 1)
        self.emit(ctx, "AuctionCreated", auction.to_checksum(), owner)
        return auction.to_checksum()

    @abi_function("auctionCount")
    def _auction_count(self, ctx: CallContext) -> int:
        return AUCTIONS.length(ctx)

    @abi_function("auctionAt")
    def _auction_at(self, ctx: CallContext, index: int) -> str:
        if index >= AUCTIONS.length(ctx):
            raise Revert("factory: index out of range")
        return AUCTIONS.get(ctx, index)

    @abi_function("auctionsOf")
    def _auctions_of(self, ctx: CallContext, owner: str) -> list[str]:
        account = Address.from_hex(owner)
        return [OWNED.get(ctx, account, i) for i in range(OWNED_COUNT.get(ctx, account))]
