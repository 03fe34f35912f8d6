"""Small LRU maps for content-addressed lookups (blocks, receipts, transactions by hash):
one bounded by entries, one by the bytes its values hold."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable


class LRU(OrderedDict):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def get(self, key, default=None):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


TRANSACTION_CACHE_BYTES = 64 * 1024 * 1024
"""What the chain's decoded-transaction cache (the pooled transactions) may hold. Entries are counted by bytes, not by
number, since one transaction may be 128 KiB: 200,000 entries could have held 25 GiB. 64 MiB
holds the 500 largest transactions, or several hundred thousand transfers (geth keeps
decoded senders on the pooled transaction objects themselves; its pool is ~160 MiB of slots)."""

TRANSACTION_OVERHEAD_BYTES = 1024
"""Memory a decoded transaction holds beyond its raw bytes and calldata: the object, its
integers, sender and hash (tracemalloc: about 750 bytes for a transfer), rounded up."""


def transaction_footprint(tx) -> int:
    """Bytes a decoded transaction keeps alive: its raw envelope, its calldata copy, the object."""
    return len(tx.raw) + len(tx.data) + TRANSACTION_OVERHEAD_BYTES


BODY_CACHE_BYTES = 16 * 1024 * 1024
"""What the chain's cache of decoded block bodies (recent blocks' transactions, for receipts,
blocks and logs over RPC) may hold. By entries, 64 bodies of maximal 128 KiB transactions held
~128 MB; 16 MiB holds the last 8 maximal blocks, or 4 blocks of 60M gas of transfers."""


def body_footprint(transactions) -> int:
    return sum(transaction_footprint(tx) for tx in transactions)


class ByteLRU:
    """An LRU map bounded by the total size of its values, as `size_of` measures them.
    A value larger than the whole capacity is not kept."""

    def __init__(self, capacity_bytes: int, size_of: Callable[[object], int]) -> None:
        self.capacity_bytes = capacity_bytes
        self.size_of = size_of
        self.bytes = 0
        self._entries: OrderedDict[object, tuple[object, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def get(self, key, default=None):
        entry = self._entries.get(key)
        if entry is None:
            return default
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key, value) -> None:
        size = self.size_of(value)
        self.pop(key)
        if size > self.capacity_bytes:
            return
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.capacity_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted

    def pop(self, key, default=None):
        """Remove `key`; its value, or `default` if it was not kept (as dict.pop)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return default
        self.bytes -= entry[1]
        return entry[0]
