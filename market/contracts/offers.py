"""Offers: paper 002's trading contract between seller and buyer agents (§II-A, §III).

The paper's functions, one each:

- `publishInfo(name, kind, endpoint)` / `getInfo(account)`: an actor stores and updates its
  public information (what it is, and where its agents can be reached) for the others to read.
- `makeOffer(amountWh, pricePerKWh, expiry)`: a seller (prosumer or operator) puts energy on
  sale; its energy tokens move into this contract (`EnergyToken.transferFrom`, which the seller
  `approve`d) and stay in escrow until sold or cancelled.
- `allocateEnergy(offerId, amountWh)`: a buyer reserves part or all of what is left of an offer,
  at the offer's price (partial allocation; several buyers may share one offer). Its cost is
  fixed here and stored in the allocation (`amountFiat`, see below).
- `allowTransaction(allocationId)`: the buyer puts the allocation's `amountFiat` into this
  contract (`FiatToken.transferFrom`, approved by the buyer).
- `makeTransaction(allocationId)`: once the buyer's meter shows the energy arrived, the escrowed
  fiat goes to the seller and the escrowed energy tokens to the buyer. Anyone may call it: the
  meter, not the caller, decides.
- `refund(allocationId)` after the offer's expiry, for an allocation not settled: fiat back to
  the buyer, energy tokens back to the seller. `cancelOffer(offerId)`: the seller takes back
  what no one has allocated.

Delivery (what "the buyer's meter confirmed delivery" means, checked by `makeTransaction`):
each allocation records the buyer's metered consumption (`Meters.totalConsumption(buyer)`)
when it was made. It is delivered when the consumption metered since then, less what earlier
settlements of the same buyer already counted, covers its amount. Each buyer has a running
`credited` total, so one metered Wh pays for at most one allocation; settlements count
consumption in the order they are made. Delivery must be shown by the offer's expiry
(block timestamp, seconds, inclusive): after it, only `refund` applies.

Amounts are integers: energy in Wh (energy-token base units, 1 token = 1 Wh), prices in fiat
base units per kWh (`pricePerKWh`; with GUSD's 2 decimals, 25 = 0.25 GUSD/kWh, the range of a
real market). An allocation of amountWh costs `cost_of(amountWh, pricePerKWh)` =
ceil(amountWh · pricePerKWh / 1000) fiat base units, rounded up so the seller is never short a
fraction of a cent. That integer is computed once, when the energy is allocated, and stored
as the allocation's `amountFiat`: escrow, payment and refund all move exactly it.

The contracts it calls (the fiat token, the energy token, Meters) are genesis params
(`fiatToken`, `energyToken`, `meters`; defaults the devnet addresses) written into this
contract's own storage at genesis and read from the storage of the address the code runs for
(`ctx.address`), never from one placement's params: an instance sharing this code calls the
contracts its own storage names, and one whose addresses were never written refuses to trade
(`offers: fiatToken address not set`).
Tokens move only by calling the token contracts; this contract never writes their storage."""
from __future__ import annotations

from market.contracts.addresses import ENERGY_TOKEN, FIAT_TOKEN, METERS, OFFERS
from market.contracts.params import as_address, parse_address
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.roles import Role
from vm.native.storage import Array, Mapping, Struct, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

MAX_UINT256 = 2**256 - 1
WH_PER_KWH = 1_000
MAX_NAME_BYTES = 64
MAX_ENDPOINT_BYTES = 256
KINDS = ("consumer", "producer", "prosumer", "operator")
"""What an actor says it is in `publishInfo` (paper 002 §III: buildings consume, PV panels
produce, batteries are prosumers; the microgrid operator covers imbalance)."""

SELLER_ROLES = (Role.PROSUMER, Role.OPERATOR)
BUYER_ROLES = (Role.PROSUMER, Role.RETAILER, Role.EV, Role.OPERATOR)


def cost_of(amount_wh: int, price_per_kwh: int) -> int:
    """Fiat base units for `amount_wh` Wh at `price_per_kwh` base units per kWh, rounded up."""
    return -(-amount_wh * price_per_kwh // WH_PER_KWH)


class Status:
    """An allocation's life: allocated → escrowed → completed, or refunded after expiry."""
    NONE = 0
    ALLOCATED = 1
    ESCROWED = 2
    COMPLETED = 3
    REFUNDED = 4


INFO = Mapping(b"info", Struct(name="string", kind="string", endpoint="string", updatedAt="uint64"))
OFFERS_LIST = Array(b"offers", Struct(seller="address", amountWh="uint256", remainingWh="uint256",
                                      pricePerKWh="uint256", expiry="uint64", open="bool"))
ALLOCATIONS = Array(b"allocations", Struct(offerId="uint256", buyer="address", amountWh="uint256",
                                           amountFiat="uint256", baselineWh="uint256", status="uint64"))
CREDITED = Mapping(b"credited", "uint256")
"""Per buyer: metered consumption already counted as delivery of a settled allocation."""
OPEN_COUNT = Value(b"openCount", "uint256")
OPEN_AT = Mapping(b"openAt", "uint256")
"""The open offers as a dense list (position → offerId), so `openOffers` never walks closed ones."""
OPEN_POSITION = Mapping(b"openPosition", "uint256")
"""offerId → position in the open list + 1 (0: not listed)."""
TOKEN_ADDRESSES = {"fiatToken": Value(b"offers.fiatToken", "address"),
                   "energyToken": Value(b"offers.energyToken", "address"),
                   "meters": Value(b"offers.meters", "address")}
"""The contracts this instance calls, from its genesis params (written at genesis)."""


class Offers(NativeContract):
    name = "Offers"
    abi_file = "offers.abi.json"
    default_address = OFFERS

    @classmethod
    def parse_params(cls, params: dict) -> dict:
        unknown = set(params) - {"fiatToken", "energyToken", "meters"}
        if unknown:
            raise ValueError(f"Offers: unknown parameters {sorted(unknown)}; known: fiatToken, energyToken, meters")
        parsed = {}
        for key, default in (("fiatToken", FIAT_TOKEN), ("energyToken", ENERGY_TOKEN), ("meters", METERS)):
            value = params.get(key)
            if value is None:
                parsed[key] = default
                continue
            parsed[key] = parse_address(value, f"Offers.{key}")
            if parsed[key] == ZERO_ADDRESS:
                raise ValueError(f"Offers: {key} must not be the zero address")
        return parsed

    def write_genesis(self, state: State) -> None:
        """The addresses of the contracts it calls; no offers, no allocations."""
        super().write_genesis(state)
        for key, slot in TOKEN_ADDRESSES.items():
            slot.write(state, self.address, self.params[key].to_checksum())

    # -- gas-free readers (for RPC views and tests over a plain State) ------
    @staticmethod
    def offer_at(state: State, address: Address, offer_id: int) -> dict | None:
        """Offer `offer_id` of the Offers contract at `address` (fields as in `offer`), or None."""
        if offer_id >= OFFERS_LIST.read_length(state, address):
            return None
        return OFFERS_LIST.read(state, address, offer_id)

    @staticmethod
    def allocation_at(state: State, address: Address, allocation_id: int) -> dict | None:
        """Allocation `allocation_id` (fields as in `allocation`), or None."""
        if allocation_id >= ALLOCATIONS.read_length(state, address):
            return None
        return ALLOCATIONS.read(state, address, allocation_id)

    # -- public information (PublishInfo / GetInfo) --------------------------
    @abi_function("publishInfo")
    def _publish_info(self, ctx: CallContext, name: str, kind: str, endpoint: str) -> None:
        if not name:
            raise Revert("offers: empty name")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise Revert(f"offers: name longer than {MAX_NAME_BYTES} bytes")
        if kind not in KINDS:
            raise Revert(f"offers: kind must be one of {', '.join(KINDS)}")
        if len(endpoint.encode()) > MAX_ENDPOINT_BYTES:
            raise Revert(f"offers: endpoint longer than {MAX_ENDPOINT_BYTES} bytes")
        if self.role_of(ctx, ctx.caller) is Role.NONE:
            raise Revert("offers: caller is not registered")
        INFO.set(ctx, ctx.caller, {"name": name, "kind": kind, "endpoint": endpoint, "updatedAt": ctx.env.timestamp})
        self.emit(ctx, "InfoPublished", ctx.caller.to_checksum(), name, kind, endpoint)

    @abi_function("getInfo")
    def _get_info(self, ctx: CallContext, account: str) -> tuple:
        info = INFO.get(ctx, Address.from_hex(account))
        if info is None:
            return "", "", "", 0
        return info["name"], info["kind"], info["endpoint"], info["updatedAt"]

    # -- offers ----------------------------------------------------------
    @abi_function("makeOffer")
    def _make_offer(self, ctx: CallContext, amount_wh: int, price_per_kwh: int, expiry: int) -> int:
        if amount_wh == 0:
            raise Revert("offers: zero amount")
        if price_per_kwh == 0:
            raise Revert("offers: zero price")
        if amount_wh * price_per_kwh > MAX_UINT256:
            raise Revert("offers: amount times price overflows")
        if expiry <= ctx.env.timestamp:
            raise Revert("offers: expiry is not in the future")
        self.require_role(ctx, ctx.caller, *SELLER_ROLES, reason="offers: caller may not sell energy")
        seller = ctx.caller.to_checksum()
        (balance,) = self.invoke(ctx, self._contract(ctx, "energyToken"), "balanceOf(address)", (seller,), ("uint256",))
        if balance < amount_wh:
            raise Revert("offers: seller has not enough energy tokens")
        offer_id = OFFERS_LIST.push(ctx, {"seller": seller, "amountWh": amount_wh, "remainingWh": amount_wh,
                                          "pricePerKWh": price_per_kwh, "expiry": expiry, "open": True})
        self._list_open(ctx, offer_id)
        self.emit(ctx, "OfferMade", offer_id, seller, amount_wh, price_per_kwh, expiry)
        self._pull(ctx, "energyToken", seller, amount_wh)
        return offer_id

    @abi_function("cancelOffer")
    def _cancel_offer(self, ctx: CallContext, offer_id: int) -> None:
        offer = self._offer(ctx, offer_id)
        if Address.from_hex(offer["seller"]) != ctx.caller:
            raise Revert("offers: caller is not the seller")
        if not offer["open"]:
            raise Revert("offers: offer is closed")
        returned = offer["remainingWh"]
        OFFERS_LIST.set(ctx, offer_id, {**offer, "remainingWh": 0, "open": False})
        self._unlist_open(ctx, offer_id)
        self.emit(ctx, "OfferCancelled", offer_id, offer["seller"], returned)
        self._pay(ctx, "energyToken", offer["seller"], returned)

    @abi_function("allocateEnergy")
    def _allocate_energy(self, ctx: CallContext, offer_id: int, amount_wh: int) -> int:
        offer = self._offer(ctx, offer_id)
        if not offer["open"]:
            raise Revert("offers: offer is closed")
        if ctx.env.timestamp > offer["expiry"]:
            raise Revert("offers: offer expired")
        if amount_wh == 0:
            raise Revert("offers: zero amount")
        if amount_wh > offer["remainingWh"]:
            raise Revert("offers: allocation exceeds the offered amount")
        if Address.from_hex(offer["seller"]) == ctx.caller:
            raise Revert("offers: seller cannot buy its own offer")
        self.require_role(ctx, ctx.caller, *BUYER_ROLES, reason="offers: caller may not buy energy")
        buyer = ctx.caller.to_checksum()
        (oracle,) = self.invoke(ctx, self._contract(ctx, "meters"), "oracleOf(address)", (buyer,), ("address",))
        if Address.from_hex(oracle) == ZERO_ADDRESS:
            raise Revert("offers: buyer has no registered meter")
        (baseline,) = self.invoke(ctx, self._contract(ctx, "meters"), "totalConsumption(address)", (buyer,),
                                  ("uint256",))
        remaining = offer["remainingWh"] - amount_wh
        OFFERS_LIST.set(ctx, offer_id, {**offer, "remainingWh": remaining, "open": remaining > 0})
        if remaining == 0:
            self._unlist_open(ctx, offer_id)
        cost = cost_of(amount_wh, offer["pricePerKWh"])  # fixed now: escrow, payment and refund move exactly it
        allocation_id = ALLOCATIONS.push(ctx, {"offerId": offer_id, "buyer": buyer, "amountWh": amount_wh,
                                               "amountFiat": cost, "baselineWh": baseline,
                                               "status": Status.ALLOCATED})
        self.emit(ctx, "EnergyAllocated", allocation_id, offer_id, buyer, amount_wh, cost)
        return allocation_id

    # -- escrow and settlement ---------------------------------------------
    @abi_function("allowTransaction")
    def _allow_transaction(self, ctx: CallContext, allocation_id: int) -> None:
        allocation = self._allocation(ctx, allocation_id)
        if Address.from_hex(allocation["buyer"]) != ctx.caller:
            raise Revert("offers: caller is not the buyer")
        if allocation["status"] != Status.ALLOCATED:
            raise Revert("offers: payment already escrowed" if allocation["status"] == Status.ESCROWED
                         else "offers: allocation already settled")
        offer = self._offer(ctx, allocation["offerId"])
        if ctx.env.timestamp > offer["expiry"]:
            raise Revert("offers: offer expired")
        ALLOCATIONS.set(ctx, allocation_id, {**allocation, "status": Status.ESCROWED})
        self.emit(ctx, "TransactionAllowed", allocation_id, allocation["buyer"], allocation["amountFiat"])
        self._pull(ctx, "fiatToken", allocation["buyer"], allocation["amountFiat"])

    @abi_function("makeTransaction")
    def _make_transaction(self, ctx: CallContext, allocation_id: int) -> None:
        allocation = self._allocation(ctx, allocation_id)
        if allocation["status"] == Status.ALLOCATED:
            raise Revert("offers: payment not escrowed")
        if allocation["status"] != Status.ESCROWED:
            raise Revert("offers: allocation already settled")
        offer = self._offer(ctx, allocation["offerId"])
        if ctx.env.timestamp > offer["expiry"]:
            raise Revert("offers: offer expired")
        buyer = allocation["buyer"]
        start, metered = self._delivery(ctx, allocation)
        if metered < allocation["amountWh"]:
            raise Revert("offers: delivery not confirmed by the buyer's meter")
        CREDITED.set(ctx, Address.from_hex(buyer), start + allocation["amountWh"])
        ALLOCATIONS.set(ctx, allocation_id, {**allocation, "status": Status.COMPLETED})
        self.emit(ctx, "TransactionMade", allocation_id, offer["seller"], buyer, allocation["amountWh"],
                  allocation["amountFiat"])
        self._pay(ctx, "fiatToken", offer["seller"], allocation["amountFiat"])
        self._pay(ctx, "energyToken", buyer, allocation["amountWh"])

    @abi_function("refund")
    def _refund(self, ctx: CallContext, allocation_id: int) -> None:
        allocation = self._allocation(ctx, allocation_id)
        if allocation["status"] not in (Status.ALLOCATED, Status.ESCROWED):
            raise Revert("offers: allocation already settled")
        offer = self._offer(ctx, allocation["offerId"])
        if ctx.env.timestamp <= offer["expiry"]:
            raise Revert("offers: not expired")
        fiat = allocation["amountFiat"] if allocation["status"] == Status.ESCROWED else 0
        ALLOCATIONS.set(ctx, allocation_id, {**allocation, "status": Status.REFUNDED})
        self.emit(ctx, "Refunded", allocation_id, allocation["buyer"], offer["seller"], fiat, allocation["amountWh"])
        self._pay(ctx, "fiatToken", allocation["buyer"], fiat)
        self._pay(ctx, "energyToken", offer["seller"], allocation["amountWh"])

    # -- views ---------------------------------------------------------------
    @abi_function("offer")
    def _offer_view(self, ctx: CallContext, offer_id: int) -> tuple:
        offer = self._offer(ctx, offer_id)
        return (offer["seller"], offer["amountWh"], offer["remainingWh"], offer["pricePerKWh"], offer["expiry"],
                offer["open"])

    @abi_function("offerCount")
    def _offer_count(self, ctx: CallContext) -> int:
        return OFFERS_LIST.length(ctx)

    @abi_function("openOffers")
    def _open_offers(self, ctx: CallContext) -> list[int]:
        """Offers that can be allocated now: open, with energy left, not expired."""
        ids = []
        for position in range(OPEN_COUNT.get(ctx)):
            offer_id = OPEN_AT.get(ctx, position)
            if ctx.env.timestamp <= OFFERS_LIST.get(ctx, offer_id)["expiry"]:
                ids.append(offer_id)
        return ids

    @abi_function("allocation")
    def _allocation_view(self, ctx: CallContext, allocation_id: int) -> tuple:
        allocation = self._allocation(ctx, allocation_id)
        return (allocation["offerId"], allocation["buyer"], allocation["amountWh"], allocation["amountFiat"],
                allocation["baselineWh"], allocation["status"])

    @abi_function("allocationCount")
    def _allocation_count(self, ctx: CallContext) -> int:
        return ALLOCATIONS.length(ctx)

    @abi_function("deliveryOf")
    def _delivery_of(self, ctx: CallContext, allocation_id: int) -> tuple:
        """The buyer's consumption metered for this allocation so far, and whether it covers it."""
        allocation = self._allocation(ctx, allocation_id)
        if allocation["status"] == Status.COMPLETED:
            return allocation["amountWh"], True
        if allocation["status"] == Status.REFUNDED:
            return 0, False
        _start, metered = self._delivery(ctx, allocation)
        return metered, metered >= allocation["amountWh"]

    @abi_function("creditedOf")
    def _credited_of(self, ctx: CallContext, buyer: str) -> int:
        return CREDITED.get(ctx, Address.from_hex(buyer))

    # -- helpers ---------------------------------------------------------------
    @staticmethod
    def _contract(ctx: CallContext, key: str) -> Address:
        """The fiat token, energy token or Meters this instance calls (from its storage)."""
        address = as_address(TOKEN_ADDRESSES[key].get(ctx))
        if address == ZERO_ADDRESS:  # an instance whose addresses were never written
            raise Revert(f"offers: {key} address not set")
        return address

    def _offer(self, ctx: CallContext, offer_id: int) -> dict:
        if offer_id >= OFFERS_LIST.length(ctx):
            raise Revert("offers: no such offer")
        return OFFERS_LIST.get(ctx, offer_id)

    def _allocation(self, ctx: CallContext, allocation_id: int) -> dict:
        if allocation_id >= ALLOCATIONS.length(ctx):
            raise Revert("offers: no such allocation")
        return ALLOCATIONS.get(ctx, allocation_id)

    def _delivery(self, ctx: CallContext, allocation: dict) -> tuple[int, int]:
        """(where this allocation's count starts, Wh metered for it since then)."""
        buyer = allocation["buyer"]
        (total,) = self.invoke(ctx, self._contract(ctx, "meters"), "totalConsumption(address)", (buyer,), ("uint256",))
        start = max(CREDITED.get(ctx, Address.from_hex(buyer)), allocation["baselineWh"])
        return start, max(total - start, 0)

    def _list_open(self, ctx: CallContext, offer_id: int) -> None:
        count = OPEN_COUNT.get(ctx)
        OPEN_AT.set(ctx, count, offer_id)
        OPEN_POSITION.set(ctx, offer_id, count + 1)
        OPEN_COUNT.set(ctx, count + 1)

    def _unlist_open(self, ctx: CallContext, offer_id: int) -> None:
        """Swap-remove from the dense open list."""
        position = OPEN_POSITION.get(ctx, offer_id)
        if position == 0:
            return
        last = OPEN_COUNT.get(ctx) - 1
        if position - 1 != last:
            moved = OPEN_AT.get(ctx, last)
            OPEN_AT.set(ctx, position - 1, moved)
            OPEN_POSITION.set(ctx, moved, position)
        OPEN_AT.set(ctx, last, 0)
        OPEN_POSITION.set(ctx, offer_id, 0)
        OPEN_COUNT.set(ctx, last)

    def _pull(self, ctx: CallContext, token: str, owner: str, amount: int) -> None:
        """Move `amount` of a token from `owner` into this contract (the owner approved it)."""
        if amount == 0:
            return
        (ok,) = self.invoke(ctx, self._contract(ctx, token), "transferFrom(address,address,uint256)",
                            (owner, ctx.address.to_checksum(), amount), ("bool",))
        if not ok:
            raise Revert(f"offers: {token} transferFrom failed")

    def _pay(self, ctx: CallContext, token: str, to: str, amount: int) -> None:
        """Pay `amount` of a token out of this contract's own balance."""
        if amount == 0:
            return
        (ok,) = self.invoke(ctx, self._contract(ctx, token), "transfer(address,uint256)", (to, amount), ("bool",))
        if not ok:
            raise Revert(f"offers: {token} transfer failed")
