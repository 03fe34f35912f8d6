"""The elecoin exchange (paper 000 §II-B, Stage I, and Algorithm 2's `buyToken`).

Elecoin is the chain's native currency. An edge server (Registry role
EDGE_SERVER) declares a uniform unit price p within the genesis bounds
[minPrice, maxPrice] and funds a reserve of elecoins; a prosumer buys x wei of
elecoins from one server's reserve and pays that server p·x in the fiat token.

Units: a price is fiat base units per 1 elecoin (10**18 wei); with the default
fiat token (2 decimals) a price of 1250 is 12.50 Grid Dollars per elecoin. A
purchase of x wei costs ceil(p·x / 10**18) fiat base units (rounded up, so a
fraction of a cent is never given away by the server).

A purchase (`buyToken(server, x)`): checks, then effects, then interactions -
the reserve is debited, the fiat moves by `FiatToken.transferFrom(buyer,
server, paid)` (the buyer first `approve`s the exchange for at least
`quote(server, x)`; the allowance also caps what a buyer can pay if the server
posts a new price before the purchase is mined), then x wei go from the
exchange's balance to the buyer. The exchange's elecoin balance is always the
sum of the reserves.

Genesis params: `fiatToken` (default FIAT_TOKEN), `minPrice` and `maxPrice`
(default 1000 and 1900: paper 000's action space A_p = [10, 19], read as whole
Grid Dollars at 2 decimals), and optional `servers`
{address: {"price": p, "reserve": wei}}. A genesis reserve is credited to the
exchange's own balance, so it counts in the genesis elecoin total (the sum of
the accounts' balances plus the reserves). The genesis author registers those
servers as edge servers in the Registry."""
from __future__ import annotations

from market.contracts.addresses import EXCHANGE, FIAT_TOKEN
from market.contracts.params import UINT256_MAX, parse_address, parse_amount
from vm.constants import ELECOIN
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.roles import Role
from vm.native.storage import Array, Mapping, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

DEFAULT_MIN_PRICE = 1000
DEFAULT_MAX_PRICE = 1900
MAX_PRICE_BOUND = 2**128
"""No price above this, so p·x stays far inside uint256 for any reserve."""
MAX_GENESIS_SERVERS = 256

FIAT = Value(b"exchange.fiatToken", "address")
MIN_PRICE = Value(b"exchange.minPrice", "uint256")
MAX_PRICE = Value(b"exchange.maxPrice", "uint256")
PRICE = Mapping(b"exchange.price", "uint256")          # server -> fiat base units per elecoin (0: none posted)
RESERVE = Mapping(b"exchange.reserve", "uint256")      # server -> wei held for it by the exchange
LISTED = Mapping(b"exchange.listed", "bool")           # server -> in SERVERS
SERVERS = Array(b"exchange.servers", "address")         # every server that posted a price or funded


def cost_of(price: int, elecoins: int) -> int:
    """Fiat base units for `elecoins` wei at `price` per elecoin, rounded up."""
    return -(-price * elecoins // ELECOIN)


class ElecoinExchange(NativeContract):
    name = "ElecoinExchange"
    abi_file = "exchange.abi.json"
    default_address = EXCHANGE

    # -- genesis ------------------------------------------------------------
    @classmethod
    def parse_params(cls, params: dict) -> dict:
        known = {"fiatToken", "minPrice", "maxPrice", "servers"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"{cls.name}: unknown params {unknown}; known: {sorted(known)}")
        fiat = parse_address(params["fiatToken"], f"{cls.name}.fiatToken") if "fiatToken" in params else FIAT_TOKEN
        if fiat == ZERO_ADDRESS:
            raise ValueError(f"{cls.name}.fiatToken: the zero address is not a token")
        low = parse_amount(params.get("minPrice", DEFAULT_MIN_PRICE), f"{cls.name}.minPrice", MAX_PRICE_BOUND)
        high = parse_amount(params.get("maxPrice", DEFAULT_MAX_PRICE), f"{cls.name}.maxPrice", MAX_PRICE_BOUND)
        if low == 0:
            raise ValueError(f"{cls.name}.minPrice: must be at least 1 (elecoins are never free)")
        if low > high:
            raise ValueError(f"{cls.name}: minPrice {low} is above maxPrice {high}")
        raw_servers = params.get("servers", {})
        if not isinstance(raw_servers, dict) or len(raw_servers) > MAX_GENESIS_SERVERS:
            raise ValueError(f"{cls.name}.servers: expected an object of at most {MAX_GENESIS_SERVERS} "
                             'address: {"price": p, "reserve": wei} entries')
        servers: dict[Address, dict] = {}
        for raw, entry in raw_servers.items():
            server = parse_address(raw, f"{cls.name}.servers key")
            where = f"{cls.name}.servers[{raw}]"
            if server == ZERO_ADDRESS:
                raise ValueError(f"{cls.name}.servers: the zero address cannot be an edge server")
            if server in servers:
                raise ValueError(f"{cls.name}.servers: {server.to_checksum()} listed twice")
            if not isinstance(entry, dict) or set(entry) - {"price", "reserve"}:
                raise ValueError(f'{where}: expected {{"price": p, "reserve": wei}}, got {entry!r}')
            price = parse_amount(entry.get("price", 0), f"{where}.price", MAX_PRICE_BOUND)
            if price and not low <= price <= high:
                raise ValueError(f"{where}.price: {price} is outside the bounds [{low}, {high}]")
            servers[server] = {"price": price, "reserve": parse_amount(entry.get("reserve", 0), f"{where}.reserve")}
        return {"fiatToken": fiat, "minPrice": low, "maxPrice": high, "servers": servers}

    def write_genesis(self, state: State) -> None:
        super().write_genesis(state)
        FIAT.write(state, self.address, self.params["fiatToken"].to_checksum())
        MIN_PRICE.write(state, self.address, self.params["minPrice"])
        MAX_PRICE.write(state, self.address, self.params["maxPrice"])
        for server, entry in self.params["servers"].items():
            PRICE.write(state, self.address, server, entry["price"])
            RESERVE.write(state, self.address, server, entry["reserve"])
            LISTED.write(state, self.address, server, True)
            SERVERS.write_push(state, self.address, server.to_checksum())
            state.add_balance(self.address, entry["reserve"])

    @property
    def genesis_reserve(self) -> int:
        """The elecoins this contract's genesis adds to the chain's total."""
        return sum(entry["reserve"] for entry in self.params["servers"].values())

    # -- gas-free readers (RPC, CLI, tests) ------------------------------------
    @staticmethod
    def price_at(state: State, exchange: Address, server: Address) -> int:
        return PRICE.read(state, exchange, server)

    @staticmethod
    def reserve_at(state: State, exchange: Address, server: Address) -> int:
        return RESERVE.read(state, exchange, server)

    # -- the edge server's side ------------------------------------------------
    @abi_function("postPrice")
    def _post_price(self, ctx: CallContext, price: int) -> None:
        self.require_role(ctx, ctx.caller, Role.EDGE_SERVER, reason="exchange: caller is not an edge server")
        low, high = MIN_PRICE.get(ctx), MAX_PRICE.get(ctx)
        if not low <= price <= high:
            raise Revert(f"exchange: price outside the bounds [{low}, {high}]")
        PRICE.set(ctx, ctx.caller, price)
        self._list(ctx, ctx.caller)
        self.emit(ctx, "PricePosted", ctx.caller.to_checksum(), price)

    @abi_function("fund")
    def _fund(self, ctx: CallContext) -> None:
        self.require_role(ctx, ctx.caller, Role.EDGE_SERVER, reason="exchange: caller is not an edge server")
        if ctx.value == 0:
            raise Revert("exchange: zero amount")
        reserve = RESERVE.get(ctx, ctx.caller) + ctx.value
        RESERVE.set(ctx, ctx.caller, reserve)
        self._list(ctx, ctx.caller)
        self.emit(ctx, "ReserveFunded", ctx.caller.to_checksum(), ctx.value, reserve)

    @abi_function("withdrawReserve")
    def _withdraw_reserve(self, ctx: CallContext, amount: int) -> None:
        """The server takes back part of its reserve (no role needed: a server whose role was
        revoked still gets its elecoins back)."""
        if amount == 0:
            raise Revert("exchange: zero amount")
        reserve = RESERVE.get(ctx, ctx.caller)
        if amount > reserve:
            raise Revert("exchange: withdrawal exceeds the reserve")
        RESERVE.set(ctx, ctx.caller, reserve - amount)
        self.emit(ctx, "ReserveWithdrawn", ctx.caller.to_checksum(), amount, reserve - amount)
        ctx.call(ctx.caller, b"", value=amount)

    # -- the buyer's side ------------------------------------------------------
    @abi_function("buyToken")
    def _buy_token(self, ctx: CallContext, server: str, elecoins: int) -> int:
        server = Address.from_hex(server)
        price, paid = self._offer(ctx, server, elecoins)
        reserve = RESERVE.get(ctx, server)
        if elecoins > reserve:
            raise Revert("exchange: purchase exceeds the server's reserve")
        RESERVE.set(ctx, server, reserve - elecoins)
        self.emit(ctx, "TokenBought", ctx.caller.to_checksum(), server.to_checksum(), elecoins, price, paid)
        (ok,) = self.invoke(ctx, Address.from_hex(FIAT.get(ctx)), "transferFrom(address,address,uint256)",
                            (ctx.caller.to_checksum(), server.to_checksum(), paid), returns=("bool",))
        if not ok:
            raise Revert("exchange: fiat payment failed")
        ctx.call(ctx.caller, b"", value=elecoins)
        return paid

    @abi_function("quote")
    def _quote(self, ctx: CallContext, server: str, elecoins: int) -> int:
        """What `buyToken(server, elecoins)` would take in fiat now (the amount to approve)."""
        return self._offer(ctx, Address.from_hex(server), elecoins)[1]

    def _offer(self, ctx: CallContext, server: Address, elecoins: int) -> tuple[int, int]:
        if elecoins == 0:
            raise Revert("exchange: zero amount")
        price = PRICE.get(ctx, server)
        if price == 0:
            raise Revert("exchange: no price posted by this server")
        self.require_role(ctx, server, Role.EDGE_SERVER, reason="exchange: server is not an edge server")
        paid = cost_of(price, elecoins)
        if paid > UINT256_MAX:
            raise Revert("exchange: purchase too large")
        return price, paid

    # -- views -------------------------------------------------------------------
    @abi_function("priceOf")
    def _price_of(self, ctx: CallContext, server: str) -> int:
        return PRICE.get(ctx, Address.from_hex(server))

    @abi_function("reserveOf")
    def _reserve_of(self, ctx: CallContext, server: str) -> int:
        return RESERVE.get(ctx, Address.from_hex(server))

    @abi_function("minPrice")
    def _min_price(self, ctx: CallContext) -> int:
        return MIN_PRICE.get(ctx)

    @abi_function("maxPrice")
    def _max_price(self, ctx: CallContext) -> int:
        return MAX_PRICE.get(ctx)

    @abi_function("fiatToken")
    def _fiat_token(self, ctx: CallContext) -> str:
        return FIAT.get(ctx)

    @abi_function("servers")
    def _servers(self, ctx: CallContext) -> list[str]:
        return [SERVERS.get(ctx, index) for index in range(SERVERS.length(ctx))]

    def _list(self, ctx: CallContext, server: Address) -> None:
        if not LISTED.get(ctx, server):
            LISTED.set(ctx, server, True)
            SERVERS.push(ctx, server.to_checksum())
