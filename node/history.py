"""Reading the state as it was at a recent block, by rolling the head state
back through the blocks' undo logs (the same logs a reorg uses)."""
from __future__ import annotations

from collections import OrderedDict

from node.chain import Chain
from node.rpc.budget import check_budget
from vm.constants import HISTORY_BLOCKS
from vm.state import State

MAX_HISTORY_BLOCKS = HISTORY_BLOCKS
"""How far back state is served: as far as undo logs make a reorg possible (go-ethereum's
path-based full node likewise serves the state of its last 128 blocks, Besu's Bonsai 512)."""
HISTORY_CACHE_READERS = 8
"""Rolled-back readers kept for the current head: a wallet or explorer asking several
questions at one old block rolls back once, not once per question."""
HISTORY_CACHE_KEYS = 25_000
"""Undo entries the cached readers may hold together (about 5 MB at most); a reader larger
than this is served but not kept."""


class HistoryUnavailable(LookupError):
    pass


class HistoricalReader:
    """The committed state after block `number`: head values, overridden by
    the oldest undo entry of every later block that touched a key."""

    def __init__(self, chain: Chain, number: int) -> None:
        if chain.head.number - number > MAX_HISTORY_BLOCKS:
            raise HistoryUnavailable(
                f"state older than {MAX_HISTORY_BLOCKS} blocks is not served (block {number}, head {chain.head.number})")
        self._head = chain.state_db
        self._before: dict[bytes, bytes | None] = {}
        for later in range(chain.head.number, number, -1):
            check_budget()
            undo = chain.store.undo_log(chain.store.canonical_hash(later))
            for key, previous in undo:
                self._before[key] = previous

    def __len__(self) -> int:
        return len(self._before)

    def get(self, key: bytes) -> bytes | None:
        if key in self._before:
            return self._before[key]
        return self._head.get(key)


def state_at(chain: Chain, number: int) -> State:
    if number >= chain.head.number:
        return chain.state()
    return State(HistoricalReader(chain, number))


class HistoricalStates:
    """`state_at` with the rolled-back readers of the current head kept in a small LRU,
    bounded by count and by undo entries, and dropped as soon as the head moves (a reader
    is only right for the head it was rolled back from)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._head_hash: bytes | None = None
        self._readers: OrderedDict[int, HistoricalReader] = OrderedDict()
        self._keys = 0

    def state_at(self, number: int) -> State:
        head = self.chain.head
        if number >= head.number:
            return self.chain.state()
        if head.hash != self._head_hash:
            self._readers.clear()
            self._keys, self._head_hash = 0, head.hash
        reader = self._readers.get(number)
        if reader is None:
            reader = HistoricalReader(self.chain, number)
            self._keep(number, reader)
        else:
            self._readers.move_to_end(number)
        return State(reader)

    def _keep(self, number: int, reader: HistoricalReader) -> None:
        if len(reader) > HISTORY_CACHE_KEYS:
            return
        self._readers[number] = reader
        self._keys += len(reader)
        while len(self._readers) > HISTORY_CACHE_READERS or self._keys > HISTORY_CACHE_KEYS:
            self._keys -= len(self._readers.popitem(last=False)[1])
