"""The committed head state: values in LevelDB behind a read cache, and the
Merkle tree over them held in memory (rebuilt by one scan at start-up)."""
from __future__ import annotations

from node.store import Store
from vm.merkle import StateTree, TreeUpdate
from vm.state import State

CACHE_LIMIT = 500_000


class StateDatabase:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[bytes, bytes | None] = {}
        self.tree = StateTree.from_items((key[1:], value) for key, value in store.state_items())

    @property
    def root(self):
        return self.tree.root

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._cache[key]
        except KeyError:
            value = self._store.state_value(key)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = value
            return value

    def state(self) -> State:
        """A fresh journaled overlay on the head state; discard it to throw changes away."""
        return State(self)

    def applied(self, changes: dict[bytes, bytes | None], update: TreeUpdate) -> None:
        """Call after the block's batch is written: make the new values current."""
        for key, value in changes.items():
            self._cache[key] = value
        self.tree.apply(update)
