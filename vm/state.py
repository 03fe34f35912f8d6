"""Account state as a journaled overlay over the committed state.

Keys are raw bytes with a one-byte kind: b"a"+address (nonce, balance),
b"s"+address+slot (a native contract's storage), b"c"+address (code).
`snapshot()` / `revert()` undo a failed transaction; `changes()` is what a
block commits."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import rlp

from vm import codec
from vm.types import Address

_MISSING = object()


class StateReader(Protocol):
    """Read access to committed state; the node backs it with LevelDB."""

    def get(self, key: bytes) -> bytes | None: ...


@dataclass(frozen=True)
class Account:
    nonce: int = 0
    balance: int = 0

    def encode(self) -> bytes:
        return codec.encode([self.nonce, self.balance])

    @classmethod
    def decode(cls, data: bytes) -> "Account":
        nonce, balance = rlp.decode(data)
        return cls(int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"))


EMPTY_ACCOUNT = Account()


def account_key(address: Address) -> bytes:
    return b"a" + address


def storage_key(address: Address, slot: bytes) -> bytes:
    return b"s" + address + slot


def code_key(address: Address) -> bytes:
    return b"c" + address


class InsufficientBalance(Exception):
    """A debit larger than the balance; callers check first, so this marks a bug."""


class State:
    def __init__(self, reader: StateReader) -> None:
        self._reader = reader
        self._dirty: dict[bytes, object] = {}
        self._journal: list[tuple[bytes, object]] = []

    # -- raw access -------------------------------------------------------
    def _get(self, key: bytes):
        if key in self._dirty:
            return self._dirty[key]
        return self._reader.get(key)

    def _set(self, key: bytes, value) -> None:
        self._journal.append((key, self._dirty.get(key, _MISSING)))
        self._dirty[key] = value

    def snapshot(self) -> int:
        return len(self._journal)

    def revert(self, snapshot: int) -> None:
        while len(self._journal) > snapshot:
            key, previous = self._journal.pop()
            if previous is _MISSING:
                del self._dirty[key]
            else:
                self._dirty[key] = previous

    def changes(self) -> dict[bytes, bytes | None]:
        """Every written key with its encoded value (None = deleted), ready to commit."""
        encoded: dict[bytes, bytes | None] = {}
        for key, value in self._dirty.items():
            if isinstance(value, Account):
                value = None if value == EMPTY_ACCOUNT else value.encode()
            encoded[key] = value
        return encoded

    # -- accounts ---------------------------------------------------------
    def get_account(self, address: Address) -> Account:
        value = self._get(account_key(address))
        if value is None:
            return EMPTY_ACCOUNT
        if isinstance(value, Account):
            return value
        return Account.decode(value)

    def set_account(self, address: Address, account: Account) -> None:
        self._set(account_key(address), account)

    def get_balance(self, address: Address) -> int:
        return self.get_account(address).balance

    def add_balance(self, address: Address, amount: int) -> None:
        if amount:
            account = self.get_account(address)
            self.set_account(address, Account(account.nonce, account.balance + amount))

    def sub_balance(self, address: Address, amount: int) -> None:
        if amount:
            account = self.get_account(address)
            if account.balance < amount:
                raise InsufficientBalance(address.hex())
            self.set_account(address, Account(account.nonce, account.balance - amount))

    def increment_nonce(self, address: Address) -> None:
        account = self.get_account(address)
        self.set_account(address, Account(account.nonce + 1, account.balance))

    # -- storage and code -------------------------------------------------
    def get_storage(self, address: Address, slot: bytes) -> bytes:
        value = self._get(storage_key(address, slot))
        return b"" if value is None else value

    def set_storage(self, address: Address, slot: bytes, value: bytes) -> None:
        self._set(storage_key(address, slot), value if value else None)

    def get_code(self, address: Address) -> bytes:
        value = self._get(code_key(address))
        return b"" if value is None else value

    def set_code(self, address: Address, code: bytes) -> None:
        self._set(code_key(address), code if code else None)
