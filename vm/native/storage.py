"""Typed storage for native contracts: values, mappings, arrays and structs over the
journaled, state-rooted key-value storage of one contract address.

A value is stored ABI-encoded under a slot named by keccak of its parts, so a
struct is one entry and costs by its size: reads and writes are charged per
32-byte word, as the EVM's SLOAD/SSTORE charge per slot (a new word 20,000, a
changed one 2,900, a read 2,100). Every accessor takes the call's context (gas,
ctx.address); `read`/`write` take a plain State and an address, for genesis
writes and gas-free readers."""
from __future__ import annotations

from typing import Any

from vm import gas
from vm.crypto import keccak256
from vm.native import abi
from vm.state import State
from vm.types import Address

WORD = 32


def words(data: bytes) -> int:
    return (len(data) + WORD - 1) // WORD


def charge_read(ctx, data: bytes) -> None:
    ctx.charge(gas.STORAGE_READ * max(words(data), 1))


def charge_write(ctx, previous: bytes, value: bytes) -> None:
    """New words at the set price, rewritten or cleared words at the update price."""
    old, new = words(previous), words(value)
    cost = gas.STORAGE_SET * max(new - old, 0) + gas.STORAGE_UPDATE * (min(old, new) + max(old - new, 0))
    ctx.charge(cost or gas.STORAGE_UPDATE)


def key_part(part) -> bytes:
    """Mapping keys: addresses and bytes as they are, ints as 32 bytes, strings as UTF-8."""
    if isinstance(part, bool):
        return bytes([part])
    if isinstance(part, int):
        return part.to_bytes(WORD, "big", signed=part < 0)
    if isinstance(part, str):
        return Address.from_hex(part) if part.startswith("0x") and len(part) == 42 else part.encode()
    if isinstance(part, (bytes, bytearray)):
        return bytes(part)
    raise TypeError(f"cannot use {type(part).__name__} as a storage key")


def slot_of(name: bytes, keys: tuple = ()) -> bytes:
    return keccak256(b"\x00".join((name, *(key_part(k) for k in keys))) if keys else name)


class Codec:
    """One ABI type (`uint256`, `address`, `string`, …): encode, decode, its zero."""

    def __init__(self, abi_type: str) -> None:
        self.abi_type = abi_type
        self.zero = abi.decode([abi_type], abi.encode([abi_type], [_zero(abi_type)]))[0]

    def encode(self, value) -> bytes:
        if value == self.zero:
            return b""  # the zero value is no entry: clearing a slot frees it
        return abi.encode([self.abi_type], [value])

    def decode(self, data: bytes):
        return abi.decode([self.abi_type], data)[0] if data else self.zero


class Struct:
    """Named fields of ABI types, stored as one ABI-encoded entry; read as a dict."""

    def __init__(self, **fields: str) -> None:
        self.names = tuple(fields)
        self.types = tuple(fields.values())

    def encode(self, value: dict | None) -> bytes:
        if value is None:
            return b""  # deleting the entry
        unknown = set(value) - set(self.names)
        if unknown:
            raise TypeError(f"unknown struct fields {sorted(unknown)}")
        return abi.encode(self.types, [value.get(n, _zero(t)) for n, t in zip(self.names, self.types)])

    def decode(self, data: bytes) -> dict | None:
        return dict(zip(self.names, abi.decode(self.types, data))) if data else None

    zero = None


def _zero(abi_type: str):
    if abi_type.endswith("]"):
        return []
    if abi_type == "address":
        return "0x" + "00" * 20
    if abi_type == "bool":
        return False
    if abi_type == "string":
        return ""
    if abi_type.startswith("bytes"):
        return b"" if abi_type == "bytes" else b"\x00" * int(abi_type[5:])
    return 0


def _codec(kind) -> Codec | Struct:
    return kind if isinstance(kind, Struct) else Codec(kind)


class _Slots:
    def __init__(self, name: bytes, kind) -> None:
        self.name = name
        self.codec = _codec(kind)

    def _load(self, ctx, slot: bytes, address: Address | None = None):
        data = ctx.state.get_storage(ctx.address if address is None else address, slot)
        charge_read(ctx, data)
        return self.codec.decode(data)

    def _store(self, ctx, slot: bytes, value) -> None:
        data = self.codec.encode(value)
        charge_write(ctx, ctx.state.get_storage(ctx.address, slot), data)
        ctx.state.set_storage(ctx.address, slot, data)


class Value(_Slots):
    """One stored value: `TOTAL = Value(b"totalSupply", "uint256")`."""

    def get(self, ctx) -> Any:
        return self._load(ctx, slot_of(self.name))

    def get_at(self, ctx, address: Address) -> Any:
        """Read the value another account (an engine) keeps, charged like a read of one's own."""
        return self._load(ctx, slot_of(self.name), address)

    def set(self, ctx, value) -> None:
        self._store(ctx, slot_of(self.name), value)

    def read(self, state: State, address: Address) -> Any:
        return self.codec.decode(state.get_storage(address, slot_of(self.name)))

    def write(self, state: State, address: Address, value) -> None:
        state.set_storage(address, slot_of(self.name), self.codec.encode(value))


class Mapping(_Slots):
    """Values by one or more keys: `BALANCES.get(ctx, owner)`, `ALLOWANCE.set(ctx, owner, spender, n)`."""

    def get(self, ctx, *keys) -> Any:
        return self._load(ctx, slot_of(self.name, keys))

    def get_at(self, ctx, address: Address, *keys) -> Any:
        """Read a value another account (an engine) keeps, charged like a read of one's own."""
        return self._load(ctx, slot_of(self.name, keys), address)

    def set(self, ctx, *keys_and_value) -> None:
        *keys, value = keys_and_value
        self._store(ctx, slot_of(self.name, tuple(keys)), value)

    def read(self, state: State, address: Address, *keys) -> Any:
        return self.codec.decode(state.get_storage(address, slot_of(self.name, keys)))

    def write(self, state: State, address: Address, *keys_and_value) -> None:
        *keys, value = keys_and_value
        state.set_storage(address, slot_of(self.name, tuple(keys)), self.codec.encode(value))


class Array(_Slots):
    """A growable list: its length under the name, element i under (name, i)."""

    def __init__(self, name: bytes, kind) -> None:
        super().__init__(name, kind)
        self._length = Codec("uint256")

    def length(self, ctx) -> int:
        data = ctx.state.get_storage(ctx.address, slot_of(self.name))
        charge_read(ctx, data)
        return self._length.decode(data)

    def get(self, ctx, index: int) -> Any:
        if not 0 <= index < self.length(ctx):
            raise IndexError(index)
        return self._load(ctx, slot_of(self.name, (index,)))

    def set(self, ctx, index: int, value) -> None:
        if not 0 <= index < self.length(ctx):
            raise IndexError(index)
        self._store(ctx, slot_of(self.name, (index,)), value)

    def push(self, ctx, value) -> int:
        index = self.length(ctx)
        self._store(ctx, slot_of(self.name, (index,)), value)
        data = self._length.encode(index + 1)
        charge_write(ctx, ctx.state.get_storage(ctx.address, slot_of(self.name)), data)
        ctx.state.set_storage(ctx.address, slot_of(self.name), data)
        return index

    def read_length(self, state: State, address: Address) -> int:
        return self._length.decode(state.get_storage(address, slot_of(self.name)))

    def read(self, state: State, address: Address, index: int) -> Any:
        return self.codec.decode(state.get_storage(address, slot_of(self.name, (index,))))

    def write_push(self, state: State, address: Address, value) -> int:
        index = self.read_length(state, address)
        state.set_storage(address, slot_of(self.name, (index,)), self.codec.encode(value))
        state.set_storage(address, slot_of(self.name), self._length.encode(index + 1))
        return index
