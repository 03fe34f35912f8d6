"""ERC-20 with issuers: the one copy of the token logic the fiat and energy tokens share.

Behaviour follows OpenZeppelin's ERC-20 (checks, then effects, then the event;
one revert reason per failed check; balances and allowances never below zero;
an allowance of 2**256-1 is "unlimited" and is not spent by `transferFrom`).
On top of the standard:

- issuers, approved by a Registry admin (`addIssuer`/`removeIssuer`), may `mint`;
- any holder may `burn` its own balance (an issuer redeeming tokens it took back);
- mint and burn emit `Transfer` from/to the zero address, so an indexer that
  sums `Transfer` events always reproduces `totalSupply`;
- `transferBatch(recipients, amounts)` pays many accounts from the caller in one call (one
  `Transfer` event each, all or nothing): a contract settling a market pays thousands of
  accounts at once without a call frame and a sender-balance write per payment.

Name, symbol and decimals live in the contract's storage (written at genesis),
so the same code serves any instance. A subclass sets `name`, `abi_file`,
`default_address`, its defaults (`token_name`, `token_symbol`,
`token_decimals`) and `reason_prefix` ("fiat" -> "fiat: insufficient allowance").
Its ABI JSON is `erc20.abi.json` (the shared fragment set) followed by its own
entries; tests/market/test_tokens.py checks that every token's ABI starts with
exactly that fragment set.

Genesis params: `name`, `symbol`, `decimals`, `issuers` (list of addresses),
`balances` ({address: amount}); `totalSupply` is the sum of the balances."""
from __future__ import annotations

from market.contracts.params import UINT256_MAX, parse_address, parse_amount
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.storage import Mapping, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

MAX_NAME_BYTES = 64
MAX_SYMBOL_BYTES = 16
MAX_DECIMALS = 36
MAX_GENESIS_ISSUERS = 256
MAX_GENESIS_BALANCES = 100_000

TOKEN_NAME = Value(b"erc20.name", "string")
TOKEN_SYMBOL = Value(b"erc20.symbol", "string")
TOKEN_DECIMALS = Value(b"erc20.decimals", "uint64")
TOTAL_SUPPLY = Value(b"erc20.totalSupply", "uint256")
BALANCES = Mapping(b"erc20.balance", "uint256")            # holder -> amount
ALLOWANCES = Mapping(b"erc20.allowance", "uint256")        # owner, spender -> amount
ISSUERS = Mapping(b"erc20.issuer", "bool")                 # account -> may mint


def _parse_text(value, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what}: expected a non-empty string, got {value!r}")
    if len(value.encode()) > limit:
        raise ValueError(f"{what}: longer than {limit} bytes")
    return value


class ERC20Token(NativeContract):
    """The shared token logic; subclasses name the kind and its defaults."""

    token_name: str
    token_symbol: str
    token_decimals: int
    reason_prefix: str

    # -- genesis ------------------------------------------------------------
    @classmethod
    def parse_params(cls, params: dict) -> dict:
        known = cls.known_params()
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"{cls.name}: unknown params {unknown}; known: {sorted(known)}")
        name = _parse_text(params.get("name", cls.token_name), f"{cls.name}.name", MAX_NAME_BYTES)
        symbol = _parse_text(params.get("symbol", cls.token_symbol), f"{cls.name}.symbol", MAX_SYMBOL_BYTES)
        decimals = params.get("decimals", cls.token_decimals)
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
            raise ValueError(f"{cls.name}.decimals: expected an integer 0..{MAX_DECIMALS}, got {decimals!r}")
        raw_issuers = params.get("issuers", [])
        if not isinstance(raw_issuers, list) or len(raw_issuers) > MAX_GENESIS_ISSUERS:
            raise ValueError(f"{cls.name}.issuers: expected a list of at most {MAX_GENESIS_ISSUERS} addresses")
        issuers: list[Address] = []
        for index, raw in enumerate(raw_issuers):
            issuer = parse_address(raw, f"{cls.name}.issuers[{index}]")
            if issuer == ZERO_ADDRESS:
                raise ValueError(f"{cls.name}.issuers[{index}]: the zero address cannot be an issuer")
            if issuer in issuers:
                raise ValueError(f"{cls.name}.issuers: {issuer.to_checksum()} listed twice")
            issuers.append(issuer)
        raw_balances = params.get("balances", {})
        if not isinstance(raw_balances, dict) or len(raw_balances) > MAX_GENESIS_BALANCES:
            raise ValueError(f"{cls.name}.balances: expected an object of at most {MAX_GENESIS_BALANCES} "
                             "address: amount entries")
        balances: dict[Address, int] = {}
        for raw, amount in raw_balances.items():
            holder = parse_address(raw, f"{cls.name}.balances key")
            if holder == ZERO_ADDRESS:
                raise ValueError(f"{cls.name}.balances: the zero address cannot hold tokens")
            if holder in balances:
                raise ValueError(f"{cls.name}.balances: {holder.to_checksum()} listed twice")
            balances[holder] = parse_amount(amount, f"{cls.name}.balances[{raw}]")
        if sum(balances.values()) > UINT256_MAX:
            raise ValueError(f"{cls.name}.balances: the total supply exceeds 2**256-1")
        return {"name": name, "symbol": symbol, "decimals": decimals, "issuers": issuers, "balances": balances}

    @classmethod
    def known_params(cls) -> set[str]:
        return {"name", "symbol", "decimals", "issuers", "balances"}

    def write_genesis(self, state: State) -> None:
        super().write_genesis(state)
        TOKEN_NAME.write(state, self.address, self.params["name"])
        TOKEN_SYMBOL.write(state, self.address, self.params["symbol"])
        TOKEN_DECIMALS.write(state, self.address, self.params["decimals"])
        for issuer in self.params["issuers"]:
            ISSUERS.write(state, self.address, issuer, True)
        for holder, amount in self.params["balances"].items():
            BALANCES.write(state, self.address, holder, amount)
        TOTAL_SUPPLY.write(state, self.address, sum(self.params["balances"].values()))

    # -- gas-free readers (RPC, CLI, tests) ------------------------------------
    @staticmethod
    def balance_at(state: State, token: Address, holder: Address) -> int:
        return BALANCES.read(state, token, holder)

    @staticmethod
    def total_supply_at(state: State, token: Address) -> int:
        return TOTAL_SUPPLY.read(state, token)

    # -- ERC-20 views --------------------------------------------------------
    @abi_function("name")
    def _name(self, ctx: CallContext) -> str:
        return TOKEN_NAME.get(ctx)

    @abi_function("symbol")
    def _symbol(self, ctx: CallContext) -> str:
        return TOKEN_SYMBOL.get(ctx)

    @abi_function("decimals")
    def _decimals(self, ctx: CallContext) -> int:
        return TOKEN_DECIMALS.get(ctx)

    @abi_function("totalSupply")
    def _total_supply(self, ctx: CallContext) -> int:
        return TOTAL_SUPPLY.get(ctx)

    @abi_function("balanceOf")
    def _balance_of(self, ctx: CallContext, account: str) -> int:
        return BALANCES.get(ctx, Address.from_hex(account))

    @abi_function("allowance")
    def _allowance(self, ctx: CallContext, owner: str, spender: str) -> int:
        return ALLOWANCES.get(ctx, Address.from_hex(owner), Address.from_hex(spender))

    @abi_function("isIssuer")
    def _is_issuer(self, ctx: CallContext, account: str) -> bool:
        return ISSUERS.get(ctx, Address.from_hex(account))

    # -- ERC-20 state changes --------------------------------------------------
    @abi_function("transfer")
    def _transfer(self, ctx: CallContext, to: str, amount: int) -> bool:
        self.move(ctx, ctx.caller, Address.from_hex(to), amount)
        return True

    @abi_function("transferBatch")
    def _transfer_batch(self, ctx: CallContext, recipients: list[str], amounts: list[int]) -> bool:
        if len(recipients) != len(amounts):
            raise Revert(f"{self.reason_prefix}: recipients and amounts differ in length")
        source = ctx.caller
        balance = BALANCES.get(ctx, source)
        total = sum(amounts)
        if balance < total:
            raise Revert(f"{self.reason_prefix}: transfer amount exceeds balance")
        BALANCES.set(ctx, source, balance - total)
        sender = source.to_checksum()
        for recipient, amount in zip(recipients, amounts):
            to = Address.from_hex(recipient)
            if to == ZERO_ADDRESS:
                raise Revert(f"{self.reason_prefix}: transfer to the zero address")
            BALANCES.set(ctx, to, BALANCES.get(ctx, to) + amount)
            self.emit(ctx, "Transfer", sender, to.to_checksum(), amount)
        return True

    @abi_function("approve")
    def _approve(self, ctx: CallContext, spender: str, amount: int) -> bool:
        spender = Address.from_hex(spender)
        if spender == ZERO_ADDRESS:
            raise Revert(f"{self.reason_prefix}: approve to the zero address")
        ALLOWANCES.set(ctx, ctx.caller, spender, amount)
        self.emit(ctx, "Approval", ctx.caller.to_checksum(), spender.to_checksum(), amount)
        return True

    @abi_function("transferFrom")
    def _transfer_from(self, ctx: CallContext, source: str, to: str, amount: int) -> bool:
        owner = Address.from_hex(source)
        allowed = ALLOWANCES.get(ctx, owner, ctx.caller)
        if allowed < amount:
            raise Revert(f"{self.reason_prefix}: insufficient allowance")
        if allowed != UINT256_MAX:
            ALLOWANCES.set(ctx, owner, ctx.caller, allowed - amount)
        self.move(ctx, owner, Address.from_hex(to), amount)
        return True

    # -- issuers ---------------------------------------------------------------
    @abi_function("addIssuer")
    def _add_issuer(self, ctx: CallContext, account: str) -> None:
        self.require_admin(ctx, ctx.caller, reason=f"{self.reason_prefix}: caller is not an admin")
        issuer = Address.from_hex(account)
        if issuer == ZERO_ADDRESS:
            raise Revert(f"{self.reason_prefix}: the zero address cannot be an issuer")
        if ISSUERS.get(ctx, issuer):
            raise Revert(f"{self.reason_prefix}: account is already an issuer")
        ISSUERS.set(ctx, issuer, True)
        self.emit(ctx, "IssuerAdded", issuer.to_checksum(), ctx.caller.to_checksum())

    @abi_function("removeIssuer")
    def _remove_issuer(self, ctx: CallContext, account: str) -> None:
        self.require_admin(ctx, ctx.caller, reason=f"{self.reason_prefix}: caller is not an admin")
        issuer = Address.from_hex(account)
        if not ISSUERS.get(ctx, issuer):
            raise Revert(f"{self.reason_prefix}: account is not an issuer")
        ISSUERS.set(ctx, issuer, False)
        self.emit(ctx, "IssuerRemoved", issuer.to_checksum(), ctx.caller.to_checksum())

    @abi_function("mint")
    def _mint(self, ctx: CallContext, to: str, amount: int) -> bool:
        if not ISSUERS.get(ctx, ctx.caller):
            raise Revert(f"{self.reason_prefix}: caller is not an issuer")
        self.create(ctx, Address.from_hex(to), amount)
        return True

    @abi_function("burn")
    def _burn(self, ctx: CallContext, amount: int) -> bool:
        holder = ctx.caller
        balance = BALANCES.get(ctx, holder)
        if balance < amount:
            raise Revert(f"{self.reason_prefix}: burn amount exceeds balance")
        BALANCES.set(ctx, holder, balance - amount)
        TOTAL_SUPPLY.set(ctx, TOTAL_SUPPLY.get(ctx) - amount)
        self.emit(ctx, "Transfer", holder.to_checksum(), ZERO_ADDRESS.to_checksum(), amount)
        return True

    # -- the two primitives every balance change goes through ---------------------
    def move(self, ctx: CallContext, source: Address, to: Address, amount: int) -> None:
        """Move `amount` from `source` to `to` on ctx.address, with OpenZeppelin's checks."""
        if source == ZERO_ADDRESS:
            raise Revert(f"{self.reason_prefix}: transfer from the zero address")
        if to == ZERO_ADDRESS:
            raise Revert(f"{self.reason_prefix}: transfer to the zero address")
        balance = BALANCES.get(ctx, source)
        if balance < amount:
            raise Revert(f"{self.reason_prefix}: transfer amount exceeds balance")
        if source != to:
            BALANCES.set(ctx, source, balance - amount)
            BALANCES.set(ctx, to, BALANCES.get(ctx, to) + amount)
        self.emit(ctx, "Transfer", source.to_checksum(), to.to_checksum(), amount)

    def create(self, ctx: CallContext, to: Address, amount: int) -> None:
        """Mint `amount` to `to`: totalSupply grows by exactly what the holder gains."""
        if to == ZERO_ADDRESS:
            raise Revert(f"{self.reason_prefix}: mint to the zero address")
        supply = TOTAL_SUPPLY.get(ctx)
        if amount > UINT256_MAX - supply:
            raise Revert(f"{self.reason_prefix}: total supply would exceed 2**256-1")
        TOTAL_SUPPLY.set(ctx, supply + amount)
        BALANCES.set(ctx, to, BALANCES.get(ctx, to) + amount)
        self.emit(ctx, "Transfer", ZERO_ADDRESS.to_checksum(), to.to_checksum(), amount)
