"""The machinery every native contract shares: ABI dispatch by selector, gas
metering, storage access, calls between contracts, and events as Ethereum logs.

A contract's ABI JSON file (shipped beside its module) is the source of truth;
Python methods bind to ABI functions by name with `@abi_function`, and a
contract whose ABI and methods disagree fails at import. A contract's code
works on `ctx.address`, so one class serves the instance at its genesis address
and every instance a factory creates."""
from __future__ import annotations

import functools
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from eth_abi.exceptions import DecodingError, EncodingError

from vm import gas
from vm.native import abi
from vm.blocks import Log
from vm.crypto import keccak256
from vm.environment import BlockEnvironment
from vm.native.roles import REGISTRY_ADDRESS, Role
from vm.state import State
from vm.types import Address

if TYPE_CHECKING:
    from vm.native.table import ContractTable

log = logging.getLogger("gridnode.vm")

ERROR_SELECTOR = keccak256(b"Error(string)")[:4]
MAX_CALL_DEPTH = 64
"""Nested contract calls a transaction may make (the EVM allows 1,024 frames; a native
market needs a handful, and a low bound keeps Python's own stack far away)."""
INTERNAL_ERROR = "internal error"


class Revert(Exception):
    """The call failed; its state changes are undone and `reason` goes back to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def data(self) -> bytes:
        """Solidity's `Error(string)` encoding, which wallets decode into the reason."""
        return ERROR_SELECTOR + abi.encode(["string"], [self.reason])


class OutOfGas(Exception):
    """The call used more gas than the transaction allowed."""


@dataclass
class CallContext:
    """One call frame's view of the world: the block, who called which contract with what
    value, and how much gas is left."""

    state: State
    env: BlockEnvironment
    contracts: "ContractTable"
    address: Address
    """The contract running: storage, events and outgoing calls are its."""
    caller: Address
    origin: Address
    value: int
    gas_left: int
    depth: int = 0
    logs: list[Log] = field(default_factory=list)

    @property
    def block_number(self) -> int:
        return self.env.number

    @property
    def timestamp(self) -> int:
        return self.env.timestamp

    def charge(self, amount: int) -> None:
        if amount > self.gas_left:
            self.gas_left = 0
            raise OutOfGas()
        self.gas_left -= amount

    def call(self, to: Address, data: bytes = b"", value: int = 0, gas_limit: int | None = None) -> bytes:
        """Call another contract (or pay an account) as this contract, Solidity-style: the
        child runs on a snapshot with all but 1/64 of the gas left (or `gas_limit`, if less);
        a revert undoes the child and re-raises here with the child's reason; its logs are
        kept only if it succeeds."""
        self.charge(gas.NATIVE_CALL)
        if self.depth + 1 > MAX_CALL_DEPTH:
            raise Revert(f"call depth limit {MAX_CALL_DEPTH} reached")
        allowance = self.gas_left - self.gas_left // 64
        child_gas = allowance if gas_limit is None else min(gas_limit, allowance)
        if value and self.state.get_balance(self.address) < value:
            raise Revert("insufficient balance for the call's value")
        child = CallContext(self.state, self.env, self.contracts, Address(to), self.address, self.origin,
                            value, child_gas, self.depth + 1)
        snapshot = self.state.snapshot()
        try:
            output = run_frame(child, data)
        except (Revert, OutOfGas):
            self.state.revert(snapshot)
            self.gas_left -= child_gas - child.gas_left
            raise
        self.gas_left -= child_gas - child.gas_left
        self.logs.extend(child.logs)
        return output


def run_frame(ctx: CallContext, data: bytes, entry: Callable[[CallContext], object] | None = None) -> bytes:
    """Move the frame's value to its address and run the code there, if any (or `entry`, a
    contract's end-of-block work). An unexpected exception in a contract is a bug, not a
    verdict on the transaction: it becomes a revert with reason `internal error` on every
    node alike (logged with its traceback), so it can neither stop the node nor split the
    chain."""
    ctx.state.sub_balance(ctx.caller, ctx.value)
    ctx.state.add_balance(ctx.address, ctx.value)
    contract = ctx.contracts.code_at(ctx.state, ctx.address)
    if contract is None:
        return b""
    try:
        if entry is not None:
            entry(ctx)
            return b""
        return contract.call(ctx, data)
    except (Revert, OutOfGas):
        raise
    except Exception as exc:
        _report_once(contract.name, exc)
        raise Revert(INTERNAL_ERROR) from None


_reported: set[tuple[str, str, int]] = set()
MAX_REPORTED = 1024


def _report_once(contract: str, exc: Exception) -> None:
    """Log a contract's bug with its traceback the first time it happens at that line, so a
    caller who triggers it in a loop cannot flood the log."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = (contract, type(exc).__name__, tb.tb_lineno if tb is not None else 0)
    if where in _reported or len(_reported) >= MAX_REPORTED:
        return
    _reported.add(where)
    log.error("native contract %s raised; the call reverts with %r", contract, INTERNAL_ERROR, exc_info=exc)


def _canonical_type(param: dict) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_canonical_type(component) for component in param["components"])
        return f"({inner}){param['type'][5:]}"
    return param["type"]


@dataclass(frozen=True)
class AbiFunction:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    mutability: str
    handler: Callable

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> bytes:
        return keccak256(self.signature.encode())[:4]


def abi_function(name: str):
    """Bind the decorated method to the ABI function `name`."""
    def mark(method):
        method.abi_name = name
        return method
    return mark


class NativeContract:
    """Base class: subclasses set `name`, `abi_file` and `default_address`, and bind methods.
    One object per genesis placement; `params` are its genesis parameters, checked by
    `parse_params` when the contract table is built."""

    name: str
    abi_file: str
    default_address: Address | None = None
    has_end_of_block = False
    """True for a contract whose `end_of_block(ctx)` runs after every block's last transaction."""
    end_of_block_gas = 30_000_000
    """Gas its end-of-block work may use per block, outside the block's gas limit."""
    instance_kinds: tuple[str, ...] = ()
    """Kinds (CATALOG names) this contract creates instances of, as a factory; the genesis
    factory adds their code to the contract table."""

    def __init__(self, address: Address | None = None, params: dict | None = None) -> None:
        self.address = address if address is not None else self.default_address
        self.params = self.parse_params(dict(params or {}))
        module_file = Path(sys.modules[type(self).__module__].__file__)
        self.abi: list[dict] = json.loads(module_file.with_name(self.abi_file).read_text())
        handlers = {member.abi_name: member for member in
                    (getattr(self, attr) for attr in dir(type(self))) if hasattr(member, "abi_name")}
        self.functions: dict[bytes, AbiFunction] = {}
        self.events: dict[str, tuple[bytes, list[dict]]] = {}
        for entry in self.abi:
            if entry["type"] == "function":
                if entry["name"] not in handlers:
                    raise TypeError(f"{self.name}: ABI function {entry['name']} has no implementation")
                function = AbiFunction(entry["name"], tuple(_canonical_type(p) for p in entry["inputs"]),
                                       tuple(_canonical_type(p) for p in entry["outputs"]),
                                       entry["stateMutability"], handlers.pop(entry["name"]))
                self.functions[function.selector] = function
            elif entry["type"] == "event":
                if any(p["indexed"] and (p["type"].endswith("]") or p["type"].startswith("tuple"))
                       for p in entry["inputs"]):
                    raise TypeError(f"{self.name}: indexed array or tuple parameters are not supported")
                types = ",".join(_canonical_type(p) for p in entry["inputs"])
                self.events[entry["name"]] = (keccak256(f"{entry['name']}({types})".encode()), entry["inputs"])
        if handlers:
            raise TypeError(f"{self.name}: methods {sorted(handlers)} are not in the ABI")

    @classmethod
    def parse_params(cls, params: dict) -> dict:
        """Check genesis parameters; raise ValueError naming the bad one. None by default."""
        if params:
            raise ValueError(f"{cls.name} takes no parameters, got {sorted(params)}")
        return params

    def write_genesis(self, state: State) -> None:
        """Mark the code at the genesis address; subclasses add their initial storage."""
        state.set_code(self.address, self.code)

    def end_of_block(self, ctx: CallContext) -> None:
        """Work after the block's last transaction (only if `has_end_of_block`)."""
        raise NotImplementedError(f"{self.name} declares no end-of-block work")

    @property
    def code(self) -> bytes:
        """What eth_getCode returns: INVALID (0xfe), so an EVM would halt at once, then the name
        (which is also how dispatch finds a created instance's code)."""
        return code_marker(self.name)

    def call(self, ctx: CallContext, data: bytes) -> bytes:
        """Run one call and return its ABI-encoded output; raises Revert or OutOfGas."""
        ctx.charge(gas.NATIVE_CALL)
        function = self.functions.get(data[:4]) if len(data) >= 4 else None
        if function is None:
            raise Revert(f"{self.name}: unknown function selector 0x{data[:4].hex()}")
        if ctx.value and function.mutability != "payable":
            raise Revert(f"{self.name}: {function.name} is not payable")
        try:
            args = abi.decode(function.inputs, data[4:])
        except (DecodingError, ValueError, OverflowError) as exc:
            raise Revert(f"{self.name}: malformed arguments for {function.signature}") from exc
        result = function.handler(ctx, *args)
        if not function.outputs:
            return b""
        return abi.encode(function.outputs, result if isinstance(result, tuple) else (result,))

    # -- helpers for subclasses ---------------------------------------------
    def slot(self, *parts: bytes) -> bytes:
        """A storage slot named by its parts, e.g. slot(b"role", address)."""
        return keccak256(b"".join(parts))

    def load(self, ctx: CallContext, slot: bytes) -> bytes:
        ctx.charge(gas.STORAGE_READ)
        return ctx.state.get_storage(ctx.address, slot)

    def store(self, ctx: CallContext, slot: bytes, value: bytes) -> None:
        previous = ctx.state.get_storage(ctx.address, slot)
        ctx.charge(gas.STORAGE_SET if not previous and value else gas.STORAGE_UPDATE)
        ctx.state.set_storage(ctx.address, slot, value)

    def emit(self, ctx: CallContext, event: str, *args) -> None:
        """Append an Ethereum log: indexed arguments become topics, the rest ABI-encoded data."""
        topic0, inputs = self.events[event]
        topics, data_types, data_values = [topic0], [], []
        for param, value in zip(inputs, args, strict=True):
            if param["indexed"]:
                kind = _canonical_type(param)
                if kind == "string":
                    topics.append(keccak256(value.encode()))
                elif kind == "bytes":
                    topics.append(keccak256(value))
                else:
                    topics.append(abi.encode([kind], [value]))
            else:
                data_types.append(_canonical_type(param))
                data_values.append(value)
        data = abi.encode(data_types, data_values)
        ctx.charge(gas.LOG + gas.LOG_TOPIC * len(topics) + gas.LOG_DATA_BYTE * len(data))
        ctx.logs.append(Log(ctx.address, tuple(topics), data))

    def invoke(self, ctx: CallContext, to: Address, signature: str, args: tuple = (),
               returns: tuple[str, ...] = (), value: int = 0) -> tuple:
        """Call `signature` (e.g. "transferFrom(address,address,uint256)") on another contract
        and decode its outputs: what a Solidity interface call compiles to."""
        try:
            data = encode_call(signature, args)
        except EncodingError as exc:
            raise Revert(f"{self.name}: cannot encode a call to {signature}: {exc}") from None
        output = ctx.call(to, data, value)
        if not returns:
            return ()
        try:
            return abi.decode(returns, output)
        except (DecodingError, ValueError, OverflowError):
            raise Revert(f"{self.name}: {signature} at 0x{bytes(to).hex()} returned malformed data") from None

    def role_of(self, ctx: CallContext, account) -> Role:
        (role,) = self.invoke(ctx, REGISTRY_ADDRESS, "roleOf(address)", (_checksum(account),), ("uint8",))
        return Role(role)

    def require_role(self, ctx: CallContext, account, *roles: Role, reason: str) -> Role:
        role = self.role_of(ctx, account)
        if role not in roles:
            raise Revert(reason)
        return role

    def require_admin(self, ctx: CallContext, account, reason: str) -> None:
        (admin,) = self.invoke(ctx, REGISTRY_ADDRESS, "isAdmin(address)", (_checksum(account),), ("bool",))
        if not admin:
            raise Revert(reason)


def code_marker(kind: str) -> bytes:
    return b"\xfe" + f"gridnode native contract: {kind}".encode()


def kind_from_code(code: bytes) -> str | None:
    prefix = code_marker("")
    return code[len(prefix):].decode() if code.startswith(prefix) else None


def _checksum(account) -> str:
    return account if isinstance(account, str) else Address(account).to_checksum()


def encode_call(signature: str, args: tuple = ()) -> bytes:
    """Selector and ABI-encoded arguments of a call to `signature`, e.g. "transfer(address,uint256)"."""
    types = signature[signature.index("(") + 1:-1]
    return _selector(signature) + abi.encode(_split_types(types), args)


@functools.lru_cache(maxsize=1024)
def _selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


@functools.lru_cache(maxsize=1024)
def _split_types(types: str) -> tuple[str, ...]:
    """Top-level comma split of an ABI parameter list (tuples keep their commas)."""
    parts, depth, current = [], 0, ""
    for char in types:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        current += char
    return tuple(parts + [current] if current else parts)
