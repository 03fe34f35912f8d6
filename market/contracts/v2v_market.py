"""V2VMarket: EVs trade energy with each other hourly through the double auction, and pay the
mLAG its mining fee from escrowed profits (thesis §4.3.1, §4.3.5, eq. 4.20, Fig. 4.5).

One interval per hour. The hour is block time cut by the EV chargers' `hourSeconds`
(hour = timestamp // hourSeconds, as the charger reports count it); a window is `windowHours`
hours of proof of state of charge (PoSOC). Both numbers, the tariff and each window's mLAG are
read from what the genesis and the engine wrote (EVChargers' and the PoSOC engine's storage), so
the market trades on the very clock and prices the scores are computed with.

Orders. The DoubleAuction's book and clearing rule (`double_auction.match`, pay-as-clear), with:
- only EVs buy and sell (Registry role EV): EVs are matched with each other, not with an unlimited
  counterparty; what an EV cannot trade here it trades with the grid at the tariff, off this book;
- prices in the tariff's unit, tenths of a cent per kWh; an order costs ⌈wh · price / 10,000⌉
  fiat base units (cents); an order's price must lie in the hour's band [buy-back, retail]
  (`hourPrices`): retail is the tariff's price of the hour's band (off/mid/on peak, Table 4.1),
  buy-back `buybackPpm` of it (default 50 %), so no EV pays more than the grid charges or sells for
  less than the grid pays;
- the book of an hour is cleared at the end of the first block of a later hour (orders placed in
  that block already belong to the new hour).

Fees (eq. 4.20: ℳ_r = Σ β·R_i). A buyer gets its energy at the clearing, a seller's fiat is held in
escrow. An EV's profit in a window is the fiat its sales earned minus the fiat its purchases spent.
When the window has ended, each EV that traded owes fee = ⌊β·max(profit, 0)⌋ (β = `betaPpm`) to the
window's mLAG (the EV drawn to produce that window's blocks); a window without an mLAG, or a zero
fee, releases the escrow at once. `payFee(window)` pays the fee from the EV's wallet (approve the
fiat token to this contract) and releases the escrow. If `graceHours` (default one window) pass
after the window's end and the fee is unpaid, the fee is confiscated from the escrow and paid to the
mLAG, the rest stays held and the EV is barred from trading; `payFee(window)` then settles: it
releases what is held and lifts the bar. So the mLAG is always paid, and a selfish EV loses the use
of its profit and of the market until it settles (the thesis's "confiscate the user's profit until
the user sends its share"). Since a fee is at most the window's sales, the escrow always covers it.

Work per block (end of block): clear at most one hour's book, close at most MAX_WINDOWS_PER_BLOCK
windows and pass at most as many deadlines, each over the EVs that traded (≤ the EVs registered).
"""
from __future__ import annotations

from consensus.posoc.engine import MLAG, POSOC_ADDRESS, TARIFF, WINDOW_HOURS
from consensus.rules.posoc import band
from market.contracts.addresses import ENERGY_TOKEN, EV_CHARGERS, FIAT_TOKEN
from market.contracts.double_auction import (CURSOR, ORDER_COUNT, ORDERS, PRICING, SETTINGS, DoubleAuction,
                                             Payout)
from market.contracts.ev_chargers import HOUR_SECONDS
from market.contracts.params import as_address, parse_address, parse_amount
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.roles import Role
from vm.native.storage import Mapping, Struct, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

V2V_MARKET = Address(b"grid" + (0x19).to_bytes(16, "big"))
PPM = 1_000_000
PRICE_SCALE = 10_000
"""Wh × tenths of a cent per kWh → cents: ⌈wh · price / 10,000⌉."""
MAX_WINDOWS_PER_BLOCK = 64
BANDS = ("off", "mid", "on")


class FeeStatus:
    NONE = 0
    """The EV did not trade in the window."""
    OPEN = 1
    """It traded; the window has not ended."""
    OWED = 2
    PAID = 3
    """Paid on time, or waived (no mLAG, or nothing earned)."""
    CONFISCATED = 4
    """Taken from the escrow after the deadline; the EV is barred."""
    SETTLED = 5
    """Confiscated, then settled by the EV: the bar is lifted."""


TERMS = {"betaPpm": Value(b"v2v.betaPpm", "uint32"), "buybackPpm": Value(b"v2v.buybackPpm", "uint32"),
         "graceHours": Value(b"v2v.graceHours", "uint64"), "evChargers": Value(b"v2v.evChargers", "address")}
PROFIT = Mapping(b"v2v.profit", "int256")
"""(EV, window) → fiat earned − fiat spent in the window's clearings."""
ESCROW = Mapping(b"v2v.escrow", "uint256")
"""(EV, window) → fiat its sales earned, held until the fee is settled."""
FEE = Mapping(b"v2v.fee", Struct(fee="uint256", status="uint8", mlag="address"))
"""(EV, window) → its fee, where it stands, and the mLAG it is owed to; unset until the EV trades."""
NO_FEE = {"fee": 0, "status": FeeStatus.NONE, "mlag": ZERO_ADDRESS.to_checksum()}
TRADERS = Mapping(b"v2v.trader", "address")
"""(window, k) → the k-th EV that traded in the window."""
TRADER_COUNT = Mapping(b"v2v.traderCount", "uint64")
BARRED = Mapping(b"v2v.barred", "uint64")
"""EV → windows whose fee was confiscated and not yet settled."""
STARTED = Value(b"v2v.started", "bool")
NEXT_CLOSE = Value(b"v2v.nextClose", "uint64")
NEXT_DEADLINE = Value(b"v2v.nextDeadline", "uint64")
TOTALS = {"charged": Value(b"v2v.charged", "uint256"), "paid": Value(b"v2v.paid", "uint256"),
          "confiscated": Value(b"v2v.confiscated", "uint256")}


class V2VMarket(DoubleAuction):
    name = "V2VMarket"
    abi_file = "v2v_market.abi.json"
    default_address = V2V_MARKET
    buyer_roles = seller_roles = (Role.EV,)
    price_scale = PRICE_SCALE
    reason = "v2v"
    _interval_blocks = _pricing = None
    """The DoubleAuction's block intervals and pricing choice are not this market's: an hour, pay-as-clear."""

    @classmethod
    def parse_params(cls, params: dict) -> dict:
        known = {"betaPpm", "buybackPpm", "graceHours", "fiatToken", "energyToken", "evChargers"}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"V2VMarket: unknown parameters {sorted(unknown)}; known: {', '.join(sorted(known))}")
        beta = parse_amount(params.get("betaPpm", 50_000), "V2VMarket.betaPpm", PPM)
        if beta == 0:
            raise ValueError("V2VMarket.betaPpm lies in 1..1,000,000 (eq. 4.20: 0 < β ≤ 1)")
        parsed = {"betaPpm": beta, "buybackPpm": parse_amount(params.get("buybackPpm", 500_000),
                                                              "V2VMarket.buybackPpm", PPM),
                  "graceHours": parse_amount(params.get("graceHours", 0), "V2VMarket.graceHours", 24 * 365)}
        for key, default in (("fiatToken", FIAT_TOKEN), ("energyToken", ENERGY_TOKEN), ("evChargers", EV_CHARGERS)):
            value = params.get(key)
            parsed[key] = default if value is None else parse_address(value, f"V2VMarket.{key}")
            if parsed[key] == ZERO_ADDRESS:
                raise ValueError(f"V2VMarket: {key} must not be the zero address")
        return parsed

    def write_genesis(self, state: State) -> None:
        NativeContract.write_genesis(self, state)
        SETTINGS["pricing"].write(state, self.address, PRICING["clear"])
        for key in ("fiatToken", "energyToken"):
            SETTINGS[key].write(state, self.address, self.params[key].to_checksum())
        for key in ("betaPpm", "buybackPpm", "graceHours"):
            TERMS[key].write(state, self.address, self.params[key])
        TERMS["evChargers"].write(state, self.address, self.params["evChargers"].to_checksum())

    # -- the clock and the tariff, as the chargers and the engine keep them --------------------------
    def _hour_seconds(self, ctx: CallContext) -> int:
        seconds = HOUR_SECONDS.get_at(ctx, as_address(TERMS["evChargers"].get(ctx)))
        if seconds == 0:
            raise Revert("v2v: no EV chargers at the configured address")
        return seconds

    def _window_hours(self, ctx: CallContext) -> int:
        hours = WINDOW_HOURS.get_at(ctx, POSOC_ADDRESS)
        if hours == 0:
            raise Revert("v2v: the chain does not run proof of state of charge")
        return hours

    def current_interval(self, ctx: CallContext) -> int:
        return ctx.env.timestamp // self._hour_seconds(ctx)

    def prices(self, ctx: CallContext, hour: int) -> tuple[int, int]:
        """(retail, buy-back) of the hour's band, tenths of a cent per kWh."""
        retail = TARIFF.get_at(ctx, POSOC_ADDRESS, BANDS.index(band(hour % 24)))
        return retail, retail * TERMS["buybackPpm"].get(ctx) // PPM

    def _grace(self, ctx: CallContext) -> int:
        return TERMS["graceHours"].get(ctx) or self._window_hours(ctx)

    # -- orders ------------------------------------------------------------------------------------
    def _check_order(self, ctx: CallContext, wh: int, price_per_kwh: int) -> None:
        super()._check_order(ctx, wh, price_per_kwh)
        if BARRED.get(ctx, ctx.caller):
            raise Revert("v2v: barred until its mining fee is paid")
        retail, buyback = self.prices(ctx, self.current_interval(ctx))
        if not buyback <= price_per_kwh <= retail:
            raise Revert(f"v2v: price outside the tariff band [{buyback}, {retail}]")

    def pay_out(self, ctx: CallContext, interval: int, payouts: dict[str, Payout]) -> None:
        """Refunds and energy at once; the sellers' earnings into the window's escrow."""
        window = interval // self._window_hours(ctx)
        self.pay_batch(ctx, "fiatToken", [(owner, due.refund) for owner, due in payouts.items()])
        self.pay_batch(ctx, "energyToken", [(owner, due.energy) for owner, due in payouts.items()])
        for owner, due in payouts.items():
            if not (due.earned or due.spent):
                continue
            ev = Address.from_hex(owner)
            fee = self._fee(ctx, ev, window)
            if fee["status"] == FeeStatus.NONE:
                count = TRADER_COUNT.get(ctx, window)
                TRADERS.set(ctx, window, count, owner)
                TRADER_COUNT.set(ctx, window, count + 1)
                FEE.set(ctx, ev, window, {**fee, "status": FeeStatus.OPEN})
            PROFIT.set(ctx, ev, window, PROFIT.get(ctx, ev, window) + due.earned - due.spent)
            ESCROW.set(ctx, ev, window, ESCROW.get(ctx, ev, window) + due.earned)

    # -- the end of every block --------------------------------------------------------------------
    def end_of_block(self, ctx: CallContext) -> None:
        hour = ctx.env.timestamp // self._hour_seconds(ctx)
        window_hours = self._window_hours(ctx)
        if not STARTED.get(ctx):
            STARTED.set(ctx, True)
            NEXT_CLOSE.set(ctx, hour // window_hours)
            NEXT_DEADLINE.set(ctx, hour // window_hours)
        start, end = CURSOR.get(ctx), ORDER_COUNT.get(ctx)
        if start < end:
            book_hour = ORDERS.get(ctx, start)["interval"]
            if book_hour < hour:
                stop = start + 1
                while stop < end and ORDERS.get(ctx, stop)["interval"] == book_hour:
                    stop += 1
                self.clear(ctx, book_hour, start, stop)
        window = NEXT_CLOSE.get(ctx)
        for _ in range(MAX_WINDOWS_PER_BLOCK):
            if window >= hour // window_hours:
                break
            self._close(ctx, window)
            window += 1
        NEXT_CLOSE.set(ctx, window)
        deadline, grace = NEXT_DEADLINE.get(ctx), self._grace(ctx)
        for _ in range(MAX_WINDOWS_PER_BLOCK):
            if deadline >= window or hour < (deadline + 1) * window_hours + grace:
                break
            self._confiscate(ctx, deadline)
            deadline += 1
        NEXT_DEADLINE.set(ctx, deadline)

    @staticmethod
    def _fee(ctx: CallContext, ev: Address, window: int) -> dict:
        return FEE.get(ctx, ev, window) or NO_FEE

    def _traders(self, ctx: CallContext, window: int) -> list[Address]:
        return [Address.from_hex(TRADERS.get(ctx, window, k)) for k in range(TRADER_COUNT.get(ctx, window))]

    def _close(self, ctx: CallContext, window: int) -> None:
        """Each trader of the ended window owes β of its profit to the window's mLAG (eq. 4.20)."""
        mlag = MLAG.get_at(ctx, POSOC_ADDRESS, window)
        has_mlag = int(mlag, 16) != 0
        beta = TERMS["betaPpm"].get(ctx)
        for ev in self._traders(ctx, window):
            profit = PROFIT.get(ctx, ev, window)
            fee = beta * max(profit, 0) // PPM if has_mlag else 0
            FEE.set(ctx, ev, window, {"fee": fee, "status": FeeStatus.OWED, "mlag": mlag})
            self.emit(ctx, "FeeCharged", ev.to_checksum(), window, profit, fee, as_address(mlag).to_checksum())
            if fee == 0:
                self._release(ctx, ev, window, 0, FeeStatus.PAID)
            else:
                TOTALS["charged"].set(ctx, TOTALS["charged"].get(ctx) + fee)

    def _confiscate(self, ctx: CallContext, window: int) -> None:
        for ev in self._traders(ctx, window):
            entry = self._fee(ctx, ev, window)
            if entry["status"] != FeeStatus.OWED:
                continue
            held = ESCROW.get(ctx, ev, window)
            taken = min(entry["fee"], held)
            ESCROW.set(ctx, ev, window, held - taken)
            FEE.set(ctx, ev, window, {**entry, "status": FeeStatus.CONFISCATED})
            BARRED.set(ctx, ev, BARRED.get(ctx, ev) + 1)
            TOTALS["confiscated"].set(ctx, TOTALS["confiscated"].get(ctx) + taken)
            self._pay(ctx, "fiatToken", entry["mlag"], taken)
            self.emit(ctx, "FeeConfiscated", ev.to_checksum(), window, taken, held - taken)

    def _release(self, ctx: CallContext, ev: Address, window: int, paid: int, status: int) -> None:
        held = ESCROW.get(ctx, ev, window)
        ESCROW.set(ctx, ev, window, 0)
        FEE.set(ctx, ev, window, {**self._fee(ctx, ev, window), "status": status})
        self._pay(ctx, "fiatToken", ev.to_checksum(), held)
        self.emit(ctx, "FeePaid", ev.to_checksum(), window, paid, held)

    @abi_function("payFee")
    def _pay_fee(self, ctx: CallContext, window: int) -> None:
        ev = ctx.caller
        entry = self._fee(ctx, ev, window)
        if entry["status"] == FeeStatus.OWED:
            (ok,) = self.invoke(ctx, self._contract(ctx, "fiatToken"), "transferFrom(address,address,uint256)",
                                (ev.to_checksum(), entry["mlag"], entry["fee"]), ("bool",))
            if not ok:
                raise Revert("v2v: fiatToken transferFrom failed")
            TOTALS["paid"].set(ctx, TOTALS["paid"].get(ctx) + entry["fee"])
            self._release(ctx, ev, window, entry["fee"], FeeStatus.PAID)
        elif entry["status"] == FeeStatus.CONFISCATED:
            BARRED.set(ctx, ev, BARRED.get(ctx, ev) - 1)
            self._release(ctx, ev, window, 0, FeeStatus.SETTLED)
        elif entry["status"] == FeeStatus.OPEN:
            raise Revert("v2v: the window has not ended")
        else:
            raise Revert("v2v: no fee owed for that window")

    # -- views ---------------------------------------------------------------------------------------
    @abi_function("hour")
    def _hour(self, ctx: CallContext) -> int:
        return self.current_interval(ctx)

    @abi_function("window")
    def _window(self, ctx: CallContext) -> int:
        return self.current_interval(ctx) // self._window_hours(ctx)

    @abi_function("windowHours")
    def _window_hours_view(self, ctx: CallContext) -> int:
        return self._window_hours(ctx)

    @abi_function("hourPrices")
    def _hour_prices(self, ctx: CallContext, hour: int) -> tuple[int, int]:
        return self.prices(ctx, hour)

    @abi_function("betaPpm")
    def _beta(self, ctx: CallContext) -> int:
        return TERMS["betaPpm"].get(ctx)

    @abi_function("graceHours")
    def _grace_view(self, ctx: CallContext) -> int:
        return self._grace(ctx)

    @abi_function("feeOf")
    def _fee_of(self, ctx: CallContext, ev: str, window: int) -> tuple[int, int, int, int, str]:
        account = Address.from_hex(ev)
        entry = self._fee(ctx, account, window)
        return (PROFIT.get(ctx, account, window), ESCROW.get(ctx, account, window), entry["fee"], entry["status"],
                as_address(entry["mlag"]).to_checksum())

    @abi_function("barred")
    def _barred(self, ctx: CallContext, ev: str) -> bool:
        return BARRED.get(ctx, Address.from_hex(ev)) > 0

    @abi_function("feeTotals")
    def _fee_totals(self, ctx: CallContext) -> tuple[int, int, int]:
        return tuple(TOTALS[key].get(ctx) for key in ("charged", "paid", "confiscated"))

    # -- gas-free reader (grid_posoc) ------------------------------------------------------------------
    @staticmethod
    def fee_totals_at(state: State, address: Address) -> dict:
        return {key: value.read(state, address) for key, value in TOTALS.items()}
