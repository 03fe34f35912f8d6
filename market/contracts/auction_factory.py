"""The auction factory of paper 004's running schemes (§IV-C, RS3; RS1 and RS2 call it too).

`createAuction(bidIncrement, startBlock, endBlock)` makes an `EnglishAuction` instance at a
deterministic address (the last 20 bytes of keccak(factory ‖ n) for the factory's n-th
auction, as CREATE derives addresses) and initialises it in the same call, with the caller
as its owner: no deployment gas, and no moment at which the instance is unclaimed. The
auction's own checks (start before end, end still ahead) revert the whole creation with the
auction's reason. Anyone may open an auction; who may bid is the auction's business.

`createAuctionWithEnergy(bidIncrement, startBlock, endBlock, energyWh)` does the same and
escrows `energyWh` energy tokens of the caller in the new auction (`EnergyToken.transferFrom`:
approve this factory first), which hands them to the winner (`settleEnergy`). The energy
token is the genesis param `energyToken` (default the devnet's EnergyToken).

Queries: `auctionCount()`, `auctionAt(i)` in creation order, `auctionsOf(owner)` (every
auction that owner opened, in creation order). Each creation logs
`AuctionCreated(auction, owner)`, both indexed."""
from __future__ import annotations

from market.contracts.addresses import ENERGY_TOKEN
from market.contracts.params import as_address, parse_address
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.storage import Array, Mapping, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

AUCTION_FACTORY = Address(b"grid" + (0x16).to_bytes(16, "big"))

AUCTIONS = Array(b"factory.auctions", "address")             # every auction, in creation order
OWNED_COUNT = Mapping(b"factory.ownedCount", "uint256")      # owner -> how many it opened
OWNED = Mapping(b"factory.owned", "address")                 # (owner, i) -> its i-th auction
ENERGY = Value(b"factory.energyToken", "address")


class AuctionFactory(NativeContract):
    name = "AuctionFactory"
    abi_file = "auction_factory.abi.json"
    default_address = AUCTION_FACTORY
    instance_kinds = ("EnglishAuction",)

    @classmethod
    def parse_params(cls, params: dict) -> dict:
        unknown = set(params) - {"energyToken"}
        if unknown:
            raise ValueError(f"AuctionFactory: unknown parameters {sorted(unknown)}; known: energyToken")
        token = params.get("energyToken")
        token = ENERGY_TOKEN if token is None else parse_address(token, "AuctionFactory.energyToken")
        if token == ZERO_ADDRESS:
            raise ValueError("AuctionFactory.energyToken must not be the zero address")
        return {"energyToken": token}

    def write_genesis(self, state: State) -> None:
        super().write_genesis(state)
        ENERGY.write(state, self.address, self.params["energyToken"].to_checksum())

    # -- gas-free readers (RPC, CLI, tests) ----------------------------------------------------
    @staticmethod
    def auctions_at(state: State, factory: Address) -> list[Address]:
        return [Address.from_hex(AUCTIONS.read(state, factory, i)) for i in range(AUCTIONS.read_length(state, factory))]

    @abi_function("createAuction")
    def _create_auction(self, ctx: CallContext, increment: int, start: int, end: int) -> str:
        return self._create(ctx, increment, start, end).to_checksum()

    @abi_function("createAuctionWithEnergy")
    def _create_auction_with_energy(self, ctx: CallContext, increment: int, start: int, end: int, wh: int) -> str:
        if wh == 0:
            raise Revert("factory: zero energy")
        auction = self._create(ctx, increment, start, end)
        token = as_address(ENERGY.get(ctx))
        (ok,) = self.invoke(ctx, token, "transferFrom(address,address,uint256)",
                            (ctx.caller.to_checksum(), auction.to_checksum(), wh), ("bool",))
        if not ok:
            raise Revert("factory: energy transferFrom failed")
        self.invoke(ctx, auction, "attachEnergy(address,uint256)", (token.to_checksum(), wh))
        return auction.to_checksum()

    def _create(self, ctx: CallContext, increment: int, start: int, end: int) -> Address:
        owner = ctx.caller.to_checksum()
        auction = ctx.contracts.create(ctx, "EnglishAuction")
        self.invoke(ctx, auction, "initialize(address,uint256,uint256,uint256)", (owner, increment, start, end))
        AUCTIONS.push(ctx, auction.to_checksum())
        count = OWNED_COUNT.get(ctx, ctx.caller)
        OWNED.set(ctx, ctx.caller, count, auction.to_checksum())
        OWNED_COUNT.set(ctx, ctx.caller, count + 1)
        self.emit(ctx, "AuctionCreated", auction.to_checksum(), owner)
        return auction

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
