"""Reading the state as it was at a recent block, by rolling the head state
back through the blocks' undo logs (the same logs a reorg uses)."""
from __future__ import annotations

from node.chain import Chain
from vm.state import State

MAX_HISTORY_BLOCKS = 1024


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
            undo = chain.store.undo_log(chain.store.canonical_hash(later))
            for key, previous in undo:
                self._before[key] = previous

    def get(self, key: bytes) -> bytes | None:
        if key in self._before:
            return self._before[key]
        return self._head.get(key)


def state_at(chain: Chain, number: int) -> State:
    if number >= chain.head.number:
        return chain.state()
    return State(HistoricalReader(chain, number))
