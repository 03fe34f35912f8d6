"""DoubleAuction: a call market for energy, one book per trading interval, cleared by the
end-of-block hook at the interval's last block (issue 10; in the manner of gsy-e's
pay-as-clear / pay-as-bid markets and lemlab).

Trading intervals: interval(n) = n // intervalBlocks for block number n (genesis param
`intervalBlocks`, default 10). An order placed in block n belongs to interval(n); the book is
cleared after the last transaction of the interval's last block (n % intervalBlocks ==
intervalBlocks - 1), so an order placed in that block is still in the book.

Orders (limit orders, Wh and fiat base units per kWh):
- `placeBid(wh, pricePerKWh)`: a buyer (prosumer, retailer, EV, operator) escrows
  ceil(wh · price / 1000) fiat by `FiatToken.transferFrom` (approve this contract first).
- `placeAsk(wh, pricePerKWh)`: a seller (prosumer, operator) escrows wh energy tokens by
  `EnergyToken.transferFrom`.
- `cancelOrder(id)`: the order's owner, while it is open (before its interval is cleared);
  the whole escrow goes back.
At most MAX_BOOK open orders wait for one clearing (`double: order book full`), so the
clearing's gas is bounded (see END_OF_BLOCK_GAS).

Clearing (integers only, deterministic):
1. Bids sorted by price descending, asks by price ascending; ties by order id ascending
   (earlier order first). Python's sort: O(n log n).
2. Two pointers: while the best remaining bid's price >= the best remaining ask's price, they
   trade min(bid left, ask left) Wh (partial fills; the fully filled side moves on). One `Fill`
   per matched pair. This maximises the traded volume.
3. Price. pay-as-clear (`pricing: "clear"`, default): one uniform price for every fill, the
   midpoint of the last matched pair, rounded down: (lastBidPrice + lastAskPrice) // 2. It lies
   between the marginal ask and the marginal bid, so no matched buyer pays more than its bid
   and no matched seller gets less than its ask. pay-as-bid (`pricing: "bid"`): each fill is
   priced at its bid's price (the buyer pays what it bid, the seller gets it). `Cleared.price`
   is the uniform price (pay-as-clear) or the volume-weighted mean fill price rounded down
   (pay-as-bid); 0 when nothing matched.
4. Fiat per fill: a bid's cumulative payment after each fill is ceil(filledSoFar · p / 1000),
   and the fill's fiat is the increase, so a bid pays ceil(filled · p / 1000) in total, never
   more than its escrow (p <= its price), and every base unit a buyer pays goes to a seller.
5. Settlement: each bid's owner gets the energy bought and the fiat not spent; each ask's owner
   gets the fiat earned and the energy not sold. Payouts are summed per account and paid with
   one `transferBatch` per token (fiat first), accounts in ascending address order: one
   `Transfer` event per (token, account) paid.
   `Cleared(interval, price, volumeWh)` after the fills. An interval with an empty book logs
   nothing.
Orders cleared are `settled` (status 3) with their `filledWh`; a cancelled one is status 2."""
from __future__ import annotations

from dataclasses import dataclass

from market.contracts.addresses import ENERGY_TOKEN, FIAT_TOKEN
from market.contracts.params import as_address, parse_address, parse_amount
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.roles import Role
from vm.native.storage import Mapping, Struct, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

DOUBLE_AUCTION = Address(b"grid" + (0x17).to_bytes(16, "big"))
WH_PER_KWH = 1_000
MAX_BOOK = 10_000
"""Open orders one clearing may have to process."""
MAX_QUANTITY = 2**96
"""Bound on wh and pricePerKWh, so every product and sum stays far inside uint256."""
END_OF_BLOCK_GAS = 1_000_000_000
"""Gas budget of one clearing (outside the block gas limit). The worst case, measured by
bench/clearing.py: MAX_BOOK orders, all matched (9,983 fills), every order its own account
(two `transferBatch` calls paying ~20,000 accounts) uses about 726 M gas; 19 owners about
369 M. The budget keeps ~35 % above the worst case; tests/market/test_double_auction.py
checks it."""
PRICING = {"clear": 0, "bid": 1}
DEFAULT_INTERVAL_BLOCKS = 10

SELLER_ROLES = (Role.PROSUMER, Role.OPERATOR)
BUYER_ROLES = (Role.PROSUMER, Role.RETAILER, Role.EV, Role.OPERATOR)


@dataclass
class Payout:
    """What one clearing owes an owner: fiat refunded from its bids' escrow, fiat earned by its asks,
    fiat its bids spent, energy bought or not sold."""

    refund: int = 0
    earned: int = 0
    spent: int = 0
    energy: int = 0


class Status:
    NONE = 0
    OPEN = 1
    CANCELLED = 2
    SETTLED = 3


def cost_of(wh: int, price_per_kwh: int, scale: int = WH_PER_KWH) -> int:
    """Fiat base units for `wh` Wh at `price_per_kwh`, rounded up (`scale`: Wh per base unit of price
    per kWh — 1,000 when prices are base units per kWh)."""
    return -(-wh * price_per_kwh // scale)


ORDER = Struct(owner="address", isBid="bool", wh="uint256", pricePerKWh="uint256", escrow="uint256",
               interval="uint64", cancelled="bool")
ORDERS = Mapping(b"double.order", ORDER)
ORDER_COUNT = Value(b"double.orderCount", "uint256")
CURSOR = Value(b"double.cursor", "uint256")
"""Orders with id < CURSOR have been through a clearing (settled, or cancelled before it)."""
OPEN_COUNT = Value(b"double.open", "uint256")
"""Open (not cancelled) orders waiting for the next clearing."""
FILLED = Mapping(b"double.filled", "uint256")
"""Wh filled per order id (set only for orders that traded)."""
LAST = Value(b"double.last", "uint256")
CLEARING = Mapping(b"double.clearing", Struct(price="uint256", volumeWh="uint256", fills="uint256",
                                              orders="uint256"))
"""Per interval that had a book: its result; LAST is the last such interval + 1 (0: none yet)."""
SETTINGS = {"intervalBlocks": Value(b"double.intervalBlocks", "uint256"),
            "pricing": Value(b"double.pricing", "uint256"),
            "fiatToken": Value(b"double.fiatToken", "address"),
            "energyToken": Value(b"double.energyToken", "address")}


def match(bids: list[tuple[int, int, int]], asks: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The matching rule over (id, wh, price) orders: fills as (bidId, askId, wh), in order."""
    bids = sorted(bids, key=lambda o: (-o[2], o[0]))
    asks = sorted(asks, key=lambda o: (o[2], o[0]))
    fills = []
    i = j = 0
    bid_left = bids[0][1] if bids else 0
    ask_left = asks[0][1] if asks else 0
    while i < len(bids) and j < len(asks) and bids[i][2] >= asks[j][2]:
        wh = min(bid_left, ask_left)
        fills.append((bids[i][0], asks[j][0], wh))
        bid_left -= wh
        ask_left -= wh
        if bid_left == 0:
            i += 1
            bid_left = bids[i][1] if i < len(bids) else 0
        if ask_left == 0:
            j += 1
            ask_left = asks[j][1] if j < len(asks) else 0
    return fills


class DoubleAuction(NativeContract):
    name = "DoubleAuction"
    abi_file = "double_auction.abi.json"
    default_address = DOUBLE_AUCTION
    has_end_of_block = True
    end_of_block_gas = END_OF_BLOCK_GAS
    buyer_roles, seller_roles = BUYER_ROLES, SELLER_ROLES
    price_scale = WH_PER_KWH
    """cost = ⌈wh · price / price_scale⌉ fiat base units."""
    reason = "double"

    @classmethod
    def parse_params(cls, params: dict) -> dict:
        known = {"intervalBlocks", "pricing", "fiatToken", "energyToken"}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"DoubleAuction: unknown parameters {sorted(unknown)}; known: {', '.join(sorted(known))}")
        blocks = parse_amount(params.get("intervalBlocks", DEFAULT_INTERVAL_BLOCKS), "DoubleAuction.intervalBlocks",
                              2**63)
        if blocks == 0:
            raise ValueError("DoubleAuction.intervalBlocks must be at least 1")
        pricing = params.get("pricing", "clear")
        if pricing not in PRICING:
            raise ValueError(f"DoubleAuction.pricing must be one of {', '.join(PRICING)}, got {pricing!r}")
        parsed = {"intervalBlocks": blocks, "pricing": pricing}
        for key, default in (("fiatToken", FIAT_TOKEN), ("energyToken", ENERGY_TOKEN)):
            value = params.get(key)
            parsed[key] = default if value is None else parse_address(value, f"DoubleAuction.{key}")
            if parsed[key] == ZERO_ADDRESS:
                raise ValueError(f"DoubleAuction: {key} must not be the zero address")
        return parsed

    def write_genesis(self, state: State) -> None:
        super().write_genesis(state)
        SETTINGS["intervalBlocks"].write(state, self.address, self.params["intervalBlocks"])
        SETTINGS["pricing"].write(state, self.address, PRICING[self.params["pricing"]])
        for key in ("fiatToken", "energyToken"):
            SETTINGS[key].write(state, self.address, self.params[key].to_checksum())

    # -- gas-free readers -------------------------------------------------------
    @staticmethod
    def order_at(state: State, address: Address, order_id: int) -> dict | None:
        return ORDERS.read(state, address, order_id)

    @staticmethod
    def clearing_at(state: State, address: Address, interval: int) -> dict | None:
        """Interval `interval`'s result (price, volumeWh, fills, orders), or None if it had no book."""
        return CLEARING.read(state, address, interval)

    # -- orders -------------------------------------------------------------------
    @abi_function("placeBid")
    def _place_bid(self, ctx: CallContext, wh: int, price_per_kwh: int) -> int:
        self._check_order(ctx, wh, price_per_kwh)
        self.require_role(ctx, ctx.caller, *self.buyer_roles, reason=f"{self.reason}: caller may not buy energy")
        return self._place(ctx, True, wh, price_per_kwh, cost_of(wh, price_per_kwh, self.price_scale))

    @abi_function("placeAsk")
    def _place_ask(self, ctx: CallContext, wh: int, price_per_kwh: int) -> int:
        self._check_order(ctx, wh, price_per_kwh)
        self.require_role(ctx, ctx.caller, *self.seller_roles, reason=f"{self.reason}: caller may not sell energy")
        return self._place(ctx, False, wh, price_per_kwh, wh)

    @abi_function("cancelOrder")
    def _cancel_order(self, ctx: CallContext, order_id: int) -> None:
        order = ORDERS.get(ctx, order_id)
        if order is None:
            raise Revert(f"{self.reason}: no such order")
        if Address.from_hex(order["owner"]) != ctx.caller:
            raise Revert(f"{self.reason}: caller is not the order's owner")
        if order["cancelled"]:
            raise Revert(f"{self.reason}: order already cancelled")
        if order_id < CURSOR.get(ctx):
            raise Revert(f"{self.reason}: order already cleared")
        ORDERS.set(ctx, order_id, {**order, "cancelled": True})
        OPEN_COUNT.set(ctx, OPEN_COUNT.get(ctx) - 1)
        self.emit(ctx, "OrderCancelled", order_id, order["owner"], order["escrow"])
        self._pay(ctx, "fiatToken" if order["isBid"] else "energyToken", order["owner"], order["escrow"])

    # -- views ----------------------------------------------------------------------
    @abi_function("order")
    def _order_view(self, ctx: CallContext, order_id: int) -> tuple:
        order = ORDERS.get(ctx, order_id)
        if order is None:
            raise Revert(f"{self.reason}: no such order")
        if order["cancelled"]:
            status = Status.CANCELLED
        elif order_id < CURSOR.get(ctx):
            status = Status.SETTLED
        else:
            status = Status.OPEN
        return (order["owner"], order["isBid"], order["wh"], order["pricePerKWh"], order["escrow"],
                order["interval"], status, FILLED.get(ctx, order_id))

    @abi_function("orderCount")
    def _order_count(self, ctx: CallContext) -> int:
        return ORDER_COUNT.get(ctx)

    @abi_function("openOrders")
    def _open_orders(self, ctx: CallContext) -> int:
        return OPEN_COUNT.get(ctx)

    @abi_function("interval")
    def _interval(self, ctx: CallContext) -> int:
        return self.current_interval(ctx)

    @abi_function("intervalBlocks")
    def _interval_blocks(self, ctx: CallContext) -> int:
        return SETTINGS["intervalBlocks"].get(ctx)

    @abi_function("pricing")
    def _pricing(self, ctx: CallContext) -> str:
        code = SETTINGS["pricing"].get(ctx)
        return next(name for name, value in PRICING.items() if value == code)

    @abi_function("lastClearing")
    def _last_clearing(self, ctx: CallContext) -> tuple:
        last = LAST.get(ctx)
        if last == 0:
            return 0, 0, 0, 0, False
        result = CLEARING.get(ctx, last - 1)
        return last - 1, result["price"], result["volumeWh"], result["fills"], True

    @abi_function("clearingOf")
    def _clearing_of(self, ctx: CallContext, interval: int) -> tuple:
        result = CLEARING.get(ctx, interval)
        if result is None:
            return 0, 0, 0, 0, False
        return result["price"], result["volumeWh"], result["fills"], result["orders"], True

    # -- clearing -------------------------------------------------------------------------
    def end_of_block(self, ctx: CallContext) -> None:
        blocks = SETTINGS["intervalBlocks"].get(ctx)
        if ctx.env.number % blocks != blocks - 1:
            return
        start, end = CURSOR.get(ctx), ORDER_COUNT.get(ctx)
        if start == end:
            return
        self.clear(ctx, ctx.env.number // blocks, start, end)

    def clear(self, ctx: CallContext, interval: int, start: int, end: int) -> None:
        """Clear orders start..end-1 (the book since the last clearing) as `interval`'s."""
        orders = {}
        bids, asks = [], []
        for order_id in range(start, end):
            order = ORDERS.get(ctx, order_id)
            if order["cancelled"]:
                continue
            orders[order_id] = order
            (bids if order["isBid"] else asks).append((order_id, order["wh"], order["pricePerKWh"]))
        fills = match(bids, asks)
        pay_as_bid = SETTINGS["pricing"].get(ctx) == PRICING["bid"]
        if fills and not pay_as_bid:
            last_bid, last_ask, _wh = fills[-1]
            uniform = (orders[last_bid]["pricePerKWh"] + orders[last_ask]["pricePerKWh"]) // 2
        else:
            uniform = 0
        filled: dict[int, int] = {}
        paid: dict[int, int] = {}
        earned: dict[int, int] = {}
        volume = value = 0
        for bid_id, ask_id, wh in fills:
            price = orders[bid_id]["pricePerKWh"] if pay_as_bid else uniform
            before = filled.get(bid_id, 0)
            fiat = cost_of(before + wh, price, self.price_scale) - cost_of(before, price, self.price_scale)
            filled[bid_id] = before + wh
            filled[ask_id] = filled.get(ask_id, 0) + wh
            paid[bid_id] = paid.get(bid_id, 0) + fiat
            earned[ask_id] = earned.get(ask_id, 0) + fiat
            volume += wh
            value += wh * price
            self.emit(ctx, "Fill", interval, bid_id, ask_id, wh, price)
        price = uniform if not pay_as_bid else (value // volume if volume else 0)
        payouts: dict[str, Payout] = {}
        for order_id, order in orders.items():
            got = filled.get(order_id, 0)
            if got:
                FILLED.set(ctx, order_id, got)
            due = payouts.setdefault(order["owner"], Payout())
            if order["isBid"]:
                due.refund += order["escrow"] - paid.get(order_id, 0)
                due.spent += paid.get(order_id, 0)
                due.energy += got
            else:
                due.earned += earned.get(order_id, 0)
                due.energy += order["wh"] - got
        CURSOR.set(ctx, end)
        OPEN_COUNT.set(ctx, OPEN_COUNT.get(ctx) - len(orders))
        CLEARING.set(ctx, interval, {"price": price, "volumeWh": volume, "fills": len(fills), "orders": len(orders)})
        LAST.set(ctx, interval + 1)
        self.emit(ctx, "Cleared", interval, price, volume)
        self.pay_out(ctx, interval, {owner: payouts[owner] for owner in
                                     sorted(payouts, key=lambda a: bytes(Address.from_hex(a)))})

    def pay_out(self, ctx: CallContext, interval: int, payouts: dict[str, "Payout"]) -> None:
        """Pay every owner (ascending address) its refund and earnings in fiat and its energy."""
        self.pay_batch(ctx, "fiatToken", [(owner, due.refund + due.earned) for owner, due in payouts.items()])
        self.pay_batch(ctx, "energyToken", [(owner, due.energy) for owner, due in payouts.items()])

    def pay_batch(self, ctx: CallContext, token: str, amounts: list[tuple[str, int]]) -> None:
        """One `transferBatch` of a token to the owners with a non-zero amount."""
        due = [(owner, amount) for owner, amount in amounts if amount]
        if due:
            recipients, values = zip(*due)
            (ok,) = self.invoke(ctx, self._contract(ctx, token), "transferBatch(address[],uint256[])",
                                (list(recipients), list(values)), ("bool",))
            if not ok:
                raise Revert(f"{self.reason}: {token} transferBatch failed")

    # -- helpers ------------------------------------------------------------------------------
    def current_interval(self, ctx: CallContext) -> int:
        """The trading interval an order placed now belongs to."""
        return ctx.env.number // SETTINGS["intervalBlocks"].get(ctx)

    def _check_order(self, ctx: CallContext, wh: int, price_per_kwh: int) -> None:
        if wh == 0:
            raise Revert(f"{self.reason}: zero amount")
        if price_per_kwh == 0:
            raise Revert(f"{self.reason}: zero price")
        if wh >= MAX_QUANTITY or price_per_kwh >= MAX_QUANTITY:
            raise Revert(f"{self.reason}: amount or price too large")
        if OPEN_COUNT.get(ctx) >= MAX_BOOK:
            raise Revert(f"{self.reason}: order book full ({MAX_BOOK} open orders)")

    def _place(self, ctx: CallContext, is_bid: bool, wh: int, price: int, escrow: int) -> int:
        order_id = ORDER_COUNT.get(ctx)
        owner = ctx.caller.to_checksum()
        interval = self.current_interval(ctx)
        ORDERS.set(ctx, order_id, {"owner": owner, "isBid": is_bid, "wh": wh, "pricePerKWh": price,
                                   "escrow": escrow, "interval": interval, "cancelled": False})
        ORDER_COUNT.set(ctx, order_id + 1)
        OPEN_COUNT.set(ctx, OPEN_COUNT.get(ctx) + 1)
        self.emit(ctx, "OrderPlaced", order_id, owner, is_bid, wh, price, interval)
        token = "fiatToken" if is_bid else "energyToken"
        (ok,) = self.invoke(ctx, self._contract(ctx, token), "transferFrom(address,address,uint256)",
                            (owner, ctx.address.to_checksum(), escrow), ("bool",))
        if not ok:
            raise Revert(f"{self.reason}: {token} transferFrom failed")
        return order_id

    def _contract(self, ctx: CallContext, key: str) -> Address:
        address = as_address(SETTINGS[key].get(ctx))
        if address == ZERO_ADDRESS:
            raise Revert(f"{self.reason}: {key} address not set")
        return address

    def _pay(self, ctx: CallContext, token: str, to: str, amount: int, address: Address | None = None) -> None:
        """Pay `amount` of a token from this contract's balance (`address`: the token, if already read)."""
        if amount == 0:
            return
        address = address if address is not None else self._contract(ctx, token)
        (ok,) = self.invoke(ctx, address, "transfer(address,uint256)", (to, amount), ("bool",))
        if not ok:
            raise Revert(f"{self.reason}: {token} transfer failed")
