"""ETSC, the electricity trading smart contract of paper 000 (§III-B, Algorithm 2).

Four modules, as in the paper:

- **Registration**: a Registry admin `empower`s a prosumer (an account with
  Registry role prosumer or retailer) with a user name, a generation right and a
  trading right; its accounts start at zero: availPower = avaElecoins = 0,
  totalGenPower = totalUsePower = 0. An account is empowered once.
- **Transaction**: the prosumer (the caller) buys y Wh from a retailer with
  `trade(retailer, y)`. `checkQualification` verifies both accounts (empowered and
  still registered, both hold the trading right, the retailer the generation
  right, the retailer has y Wh available, the prosumer has y·Q elecoins); then
  Algorithm 2's clearing at the unit price Q:
      prosumer: availPower + y, avaElecoins - y·Q
      retailer: availPower - y, avaElecoins + y·Q
- **Electricity clearing**: the prosumer's meter oracle (Meters.oracleOf) posts
  `generation(prosumer, wh)` (totalGenPower and availPower grow by wh) and
  `consumption(prosumer, wh)` (totalUsePower grows by wh; availPower falls by wh,
  or to zero when the prosumer used more than it had: the rest came from the
  utility grid, and the event says how much was drawn from availPower). The
  generation right is what lets a prosumer sell (act as a retailer); a meter's
  generation is recorded either way.
- **Query**: six views of an account - queryUserName, queryRights,
  queryAvailPower, queryElecoins, queryTotalGenPower, queryTotalUsePower.

Elecoins: avaElecoins is an elecoin account held by the contract, as in the
paper (it starts at zero on `empower` and `trade` moves it between the two
parties). A prosumer fills it with `deposit()` (payable) or by sending value
with `trade` itself (credited before the check), and takes its balance out with
`withdraw(amount)`; a retailer's earnings stay in its account until it
withdraws. The contract's elecoin balance is always the sum of the accounts.
Energy is counted in Wh; Q (`unitPrice`) is wei per Wh.

Genesis params: `unitPrice` (default 6·10**14 wei per Wh: paper 000's Q = 0.6
read as elecoins per kWh), `meters` (default METERS), and optional `prosumers`
{address: {"name": ..., "generationRight": bool, "tradingRight": bool}}
empowered from block 0 (the genesis author registers them in the Registry)."""
from __future__ import annotations

from market.contracts.addresses import ETSC as ETSC_ADDRESS
from market.contracts.addresses import METERS
from market.contracts.params import UINT256_MAX, parse_address, parse_amount
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.roles import Role
from vm.native.storage import Array, Mapping, Struct, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

DEFAULT_UNIT_PRICE = 6 * 10**14
MAX_UNIT_PRICE = 2**128
MAX_NAME_BYTES = 64
MAX_GENESIS_PROSUMERS = 100_000
TRADERS = (Role.PROSUMER, Role.RETAILER)
"""Registry roles an ETSC account may hold."""

UNIT_PRICE = Value(b"etsc.unitPrice", "uint256")
METERS_ADDRESS = Value(b"etsc.meters", "address")
USER = Struct(userName="string", generationRight="bool", tradingRight="bool")
USERS = Mapping(b"etsc.user", USER)                        # account -> registration (None: not empowered)
AVAIL_POWER = Mapping(b"etsc.availPower", "uint256")       # Wh
ELECOINS = Mapping(b"etsc.avaElecoins", "uint256")         # wei
TOTAL_GEN = Mapping(b"etsc.totalGenPower", "uint256")      # Wh
TOTAL_USE = Mapping(b"etsc.totalUsePower", "uint256")      # Wh
PROSUMERS = Array(b"etsc.prosumers", "address")            # in order of empowerment


def _parse_flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what}: expected true or false, got {value!r}")
    return value


class ETSC(NativeContract):
    name = "ETSC"
    abi_file = "etsc.abi.json"
    default_address = ETSC_ADDRESS

    # -- genesis (System Initialization -> constructor()) -------------------------
    @classmethod
    def parse_params(cls, params: dict) -> dict:
        known = {"unitPrice", "meters", "prosumers"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"ETSC: unknown params {unknown}; known: {sorted(known)}")
        unit_price = parse_amount(params.get("unitPrice", DEFAULT_UNIT_PRICE), "ETSC.unitPrice", MAX_UNIT_PRICE)
        if unit_price == 0:
            raise ValueError("ETSC.unitPrice: must be at least 1 wei per Wh")
        meters = parse_address(params["meters"], "ETSC.meters") if "meters" in params else METERS
        if meters == ZERO_ADDRESS:
            raise ValueError("ETSC.meters: the zero address is not the Meters contract")
        raw = params.get("prosumers", {})
        if not isinstance(raw, dict) or len(raw) > MAX_GENESIS_PROSUMERS:
            raise ValueError(f"ETSC.prosumers: expected an object of at most {MAX_GENESIS_PROSUMERS} "
                             'address: {"name", "generationRight", "tradingRight"} entries')
        prosumers: dict[Address, dict] = {}
        for key, entry in raw.items():
            account = parse_address(key, "ETSC.prosumers key")
            where = f"ETSC.prosumers[{key}]"
            if account == ZERO_ADDRESS:
                raise ValueError("ETSC.prosumers: the zero address cannot be empowered")
            if account in prosumers:
                raise ValueError(f"ETSC.prosumers: {account.to_checksum()} listed twice")
            if not isinstance(entry, dict) or set(entry) != {"name", "generationRight", "tradingRight"}:
                raise ValueError(f'{where}: expected {{"name", "generationRight", "tradingRight"}}, got {entry!r}')
            name = entry["name"]
            if not isinstance(name, str) or not name.strip() or len(name.encode()) > MAX_NAME_BYTES:
                raise ValueError(f"{where}.name: expected a non-empty string of at most {MAX_NAME_BYTES} bytes")
            prosumers[account] = {"userName": name,
                                  "generationRight": _parse_flag(entry["generationRight"], f"{where}.generationRight"),
                                  "tradingRight": _parse_flag(entry["tradingRight"], f"{where}.tradingRight")}
        return {"unitPrice": unit_price, "meters": meters, "prosumers": prosumers}

    def write_genesis(self, state: State) -> None:
        super().write_genesis(state)
        UNIT_PRICE.write(state, self.address, self.params["unitPrice"])
        METERS_ADDRESS.write(state, self.address, self.params["meters"].to_checksum())
        for account, user in self.params["prosumers"].items():
            USERS.write(state, self.address, account, user)
            PROSUMERS.write_push(state, self.address, account.to_checksum())

    # -- gas-free readers (RPC, CLI, tests) ------------------------------------------
    @staticmethod
    def user_at(state: State, etsc: Address, account: Address) -> dict | None:
        """{userName, generationRight, tradingRight}, or None if the account is not empowered."""
        return USERS.read(state, etsc, account)

    @staticmethod
    def accounts_at(state: State, etsc: Address, account: Address) -> dict:
        """availPower, avaElecoins, totalGenPower, totalUsePower of one account."""
        return {"availPower": AVAIL_POWER.read(state, etsc, account),
                "avaElecoins": ELECOINS.read(state, etsc, account),
                "totalGenPower": TOTAL_GEN.read(state, etsc, account),
                "totalUsePower": TOTAL_USE.read(state, etsc, account)}

    # -- Registration module -------------------------------------------------------
    @abi_function("empower")
    def _empower(self, ctx: CallContext, prosumer: str, name: str, generation_right: bool,
                 trading_right: bool) -> None:
        self.require_admin(ctx, ctx.caller, reason="etsc: caller is not an admin")
        account = Address.from_hex(prosumer)
        if not name.strip() or len(name.encode()) > MAX_NAME_BYTES:
            raise Revert(f"etsc: name must be 1 to {MAX_NAME_BYTES} bytes")
        self.require_role(ctx, account, *TRADERS, reason="etsc: account is not a registered prosumer or retailer")
        if USERS.get(ctx, account) is not None:
            raise Revert("etsc: prosumer already empowered")
        USERS.set(ctx, account, {"userName": name, "generationRight": generation_right,
                                 "tradingRight": trading_right})
        PROSUMERS.push(ctx, account.to_checksum())
        self.emit(ctx, "Empowered", account.to_checksum(), name, generation_right, trading_right)

    # -- Electricity clearing module (smart meters) ------------------------------------
    @abi_function("generation")
    def _generation(self, ctx: CallContext, prosumer: str, wh: int) -> None:
        account = self._metered(ctx, prosumer)
        total = TOTAL_GEN.get(ctx, account) + wh
        avail = AVAIL_POWER.get(ctx, account) + wh
        if total > UINT256_MAX or avail > UINT256_MAX:
            raise Revert("etsc: power account overflow")
        TOTAL_GEN.set(ctx, account, total)
        AVAIL_POWER.set(ctx, account, avail)
        self.emit(ctx, "Generation", account.to_checksum(), ctx.caller.to_checksum(), wh, avail, total)

    @abi_function("consumption")
    def _consumption(self, ctx: CallContext, prosumer: str, wh: int) -> None:
        account = self._metered(ctx, prosumer)
        total = TOTAL_USE.get(ctx, account) + wh
        if total > UINT256_MAX:
            raise Revert("etsc: power account overflow")
        avail = AVAIL_POWER.get(ctx, account)
        drawn = min(wh, avail)
        TOTAL_USE.set(ctx, account, total)
        AVAIL_POWER.set(ctx, account, avail - drawn)
        self.emit(ctx, "Consumption", account.to_checksum(), ctx.caller.to_checksum(), wh, drawn,
                  avail - drawn, total)

    def _metered(self, ctx: CallContext, prosumer: str) -> Address:
        """The prosumer a meter reading is for, once the caller is shown to be its oracle."""
        account = Address.from_hex(prosumer)
        (oracle,) = self.invoke(ctx, Address.from_hex(METERS_ADDRESS.get(ctx)), "oracleOf(address)",
                                (account.to_checksum(),), returns=("address",))
        if Address.from_hex(oracle) != ctx.caller:
            raise Revert("etsc: caller is not the prosumer's meter oracle")
        if USERS.get(ctx, account) is None:
            raise Revert("etsc: prosumer not empowered")
        return account

    # -- Transaction module ---------------------------------------------------------
    @abi_function("deposit")
    def _deposit(self, ctx: CallContext) -> None:
        if ctx.value == 0:
            raise Revert("etsc: zero amount")
        self._credit(ctx, ctx.caller, ctx.value)

    @abi_function("withdraw")
    def _withdraw(self, ctx: CallContext, amount: int) -> None:
        if amount == 0:
            raise Revert("etsc: zero amount")
        balance = ELECOINS.get(ctx, ctx.caller)
        if amount > balance:
            raise Revert("etsc: withdrawal exceeds the elecoin balance")
        ELECOINS.set(ctx, ctx.caller, balance - amount)
        self.emit(ctx, "Withdrawn", ctx.caller.to_checksum(), amount, balance - amount)
        ctx.call(ctx.caller, b"", value=amount)

    @abi_function("trade")
    def _trade(self, ctx: CallContext, retailer: str, wh: int) -> None:
        buyer, seller = ctx.caller, Address.from_hex(retailer)
        if ctx.value:
            self._credit(ctx, buyer, ctx.value)
        qualified, reason = self._check_qualification(ctx, buyer, seller, wh)
        if not qualified:
            raise Revert(reason)
        unit_price = UNIT_PRICE.get(ctx)
        cost = wh * unit_price
        bought = AVAIL_POWER.get(ctx, buyer) + wh
        if bought > UINT256_MAX:
            raise Revert("etsc: power account overflow")
        AVAIL_POWER.set(ctx, buyer, bought)
        ELECOINS.set(ctx, buyer, ELECOINS.get(ctx, buyer) - cost)
        AVAIL_POWER.set(ctx, seller, AVAIL_POWER.get(ctx, seller) - wh)
        ELECOINS.set(ctx, seller, ELECOINS.get(ctx, seller) + cost)
        self.emit(ctx, "Trade", buyer.to_checksum(), seller.to_checksum(), wh, unit_price, cost)

    @abi_function("checkQualification")
    def _check_qualification_view(self, ctx: CallContext, prosumer: str, retailer: str, wh: int) -> tuple[bool, str]:
        return self._check_qualification(ctx, Address.from_hex(prosumer), Address.from_hex(retailer), wh)

    def _check_qualification(self, ctx: CallContext, buyer: Address, seller: Address, wh: int) -> tuple[bool, str]:
        """Algorithm 2's accounts verification: (True, "") or (False, the revert reason of `trade`)."""
        if wh == 0:
            return False, "etsc: zero amount"
        if buyer == seller:
            return False, "etsc: prosumer and retailer are the same account"
        buyer_user, seller_user = USERS.get(ctx, buyer), USERS.get(ctx, seller)
        if buyer_user is None:
            return False, "etsc: prosumer not empowered"
        if seller_user is None:
            return False, "etsc: retailer not empowered"
        if self.role_of(ctx, buyer) not in TRADERS:
            return False, "etsc: prosumer is no longer registered"
        if self.role_of(ctx, seller) not in TRADERS:
            return False, "etsc: retailer is no longer registered"
        if not buyer_user["tradingRight"]:
            return False, "etsc: prosumer has no trading right"
        if not seller_user["tradingRight"]:
            return False, "etsc: retailer has no trading right"
        if not seller_user["generationRight"]:
            return False, "etsc: retailer has no generation right"
        if AVAIL_POWER.get(ctx, seller) < wh:
            return False, "etsc: retailer has too little available power"
        if ELECOINS.get(ctx, buyer) < wh * UNIT_PRICE.get(ctx):
            return False, "etsc: prosumer has too few elecoins"
        return True, ""

    def _credit(self, ctx: CallContext, account: Address, amount: int) -> None:
        if USERS.get(ctx, account) is None:
            raise Revert("etsc: account not empowered")
        balance = ELECOINS.get(ctx, account) + amount
        ELECOINS.set(ctx, account, balance)
        self.emit(ctx, "Deposited", account.to_checksum(), amount, balance)

    # -- the unit price Q ----------------------------------------------------------
    @abi_function("setUnitPrice")
    def _set_unit_price(self, ctx: CallContext, unit_price: int) -> None:
        """Q follows the utility grid's price (paper 000 §II-B); an admin updates it."""
        self.require_admin(ctx, ctx.caller, reason="etsc: caller is not an admin")
        if not 0 < unit_price <= MAX_UNIT_PRICE:
            raise Revert(f"etsc: unit price must be 1 to {MAX_UNIT_PRICE} wei per Wh")
        UNIT_PRICE.set(ctx, unit_price)
        self.emit(ctx, "UnitPriceSet", ctx.caller.to_checksum(), unit_price)

    @abi_function("unitPrice")
    def _unit_price(self, ctx: CallContext) -> int:
        return UNIT_PRICE.get(ctx)

    @abi_function("meters")
    def _meters(self, ctx: CallContext) -> str:
        return METERS_ADDRESS.get(ctx)

    @abi_function("isEmpowered")
    def _is_empowered(self, ctx: CallContext, account: str) -> bool:
        return USERS.get(ctx, Address.from_hex(account)) is not None

    @abi_function("prosumers")
    def _prosumers(self, ctx: CallContext) -> list[str]:
        return [PROSUMERS.get(ctx, index) for index in range(PROSUMERS.length(ctx))]

    # -- Query module: the six interfaces ---------------------------------------------
    @abi_function("queryUserName")
    def _query_user_name(self, ctx: CallContext, account: str) -> str:
        user = USERS.get(ctx, Address.from_hex(account))
        return user["userName"] if user else ""

    @abi_function("queryRights")
    def _query_rights(self, ctx: CallContext, account: str) -> tuple[bool, bool]:
        user = USERS.get(ctx, Address.from_hex(account))
        return (user["generationRight"], user["tradingRight"]) if user else (False, False)

    @abi_function("queryAvailPower")
    def _query_avail_power(self, ctx: CallContext, account: str) -> int:
        return AVAIL_POWER.get(ctx, Address.from_hex(account))

    @abi_function("queryElecoins")
    def _query_elecoins(self, ctx: CallContext, account: str) -> int:
        return ELECOINS.get(ctx, Address.from_hex(account))

    @abi_function("queryTotalGenPower")
    def _query_total_gen_power(self, ctx: CallContext, account: str) -> int:
        return TOTAL_GEN.get(ctx, Address.from_hex(account))

    @abi_function("queryTotalUsePower")
    def _query_total_use_power(self, ctx: CallContext, account: str) -> int:
        return TOTAL_USE.get(ctx, Address.from_hex(account))
