"""The machinery every native contract shares: ABI dispatch by selector, gas
metering, storage access and events as Ethereum logs.

A contract's ABI JSON file (shipped beside its module) is the source of truth;
Python methods bind to ABI functions by name with `@abi_function`, and a
contract whose ABI and methods disagree fails at import."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable

import eth_abi
from eth_abi.exceptions import DecodingError

from vm import gas
from vm.blocks import Log
from vm.crypto import keccak256
from vm.state import State
from vm.types import Address

ERROR_SELECTOR = keccak256(b"Error(string)")[:4]


class Revert(Exception):
    """The call failed; its state changes are undone and `reason` goes back to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def data(self) -> bytes:
        """Solidity's `Error(string)` encoding, which wallets decode into the reason."""
        return ERROR_SELECTOR + eth_abi.encode(["string"], [self.reason])


class OutOfGas(Exception):
    """The call used more gas than the transaction allowed."""


@dataclass
class CallContext:
    """One call's view of the world: who called, with what value, how much gas is left."""

    state: State
    caller: Address
    value: int
    gas_left: int
    block_number: int
    timestamp: int
    logs: list[Log] = field(default_factory=list)

    def charge(self, amount: int) -> None:
        if amount > self.gas_left:
            self.gas_left = 0
            raise OutOfGas()
        self.gas_left -= amount


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
    """Base class: subclasses set `name`, `address` and `abi_file` and bind methods."""

    name: str
    address: Address
    abi_file: str

    def __init__(self) -> None:
        package = type(self).__module__.rsplit(".", 1)[0]
        self.abi: list[dict] = json.loads(resources.files(package).joinpath(self.abi_file).read_text())
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

    @property
    def code(self) -> bytes:
        """What eth_getCode returns: INVALID (0xfe), so an EVM would halt at once, then the name."""
        return b"\xfe" + f"gridnode native contract: {self.name}".encode()

    def call(self, ctx: CallContext, data: bytes) -> bytes:
        """Run one call and return its ABI-encoded output; raises Revert or OutOfGas."""
        ctx.charge(gas.NATIVE_CALL)
        function = self.functions.get(data[:4]) if len(data) >= 4 else None
        if function is None:
            raise Revert(f"{self.name}: unknown function selector 0x{data[:4].hex()}")
        if ctx.value and function.mutability != "payable":
            raise Revert(f"{self.name}: {function.name} is not payable")
        try:
            args = eth_abi.decode(list(function.inputs), data[4:])
        except (DecodingError, ValueError, OverflowError) as exc:
            raise Revert(f"{self.name}: malformed arguments for {function.signature}") from exc
        result = function.handler(ctx, *args)
        if not function.outputs:
            return b""
        return eth_abi.encode(list(function.outputs), result if isinstance(result, tuple) else (result,))

    # -- helpers for subclasses ---------------------------------------------
    def slot(self, *parts: bytes) -> bytes:
        """A storage slot named by its parts, e.g. slot(b"role", address)."""
        return keccak256(b"".join(parts))

    def load(self, ctx: CallContext, slot: bytes) -> bytes:
        ctx.charge(gas.STORAGE_READ)
        return ctx.state.get_storage(self.address, slot)

    def store(self, ctx: CallContext, slot: bytes, value: bytes) -> None:
        previous = ctx.state.get_storage(self.address, slot)
        ctx.charge(gas.STORAGE_SET if not previous and value else gas.STORAGE_UPDATE)
        ctx.state.set_storage(self.address, slot, value)

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
                    topics.append(eth_abi.encode([kind], [value]))
            else:
                data_types.append(_canonical_type(param))
                data_values.append(value)
        data = eth_abi.encode(data_types, data_values)
        ctx.charge(gas.LOG + gas.LOG_TOPIC * len(topics) + gas.LOG_DATA_BYTE * len(data))
        ctx.logs.append(Log(self.address, tuple(topics), data))
