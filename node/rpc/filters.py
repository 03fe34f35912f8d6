"""Polling filters — eth_newFilter, eth_newBlockFilter, eth_getFilterChanges,
eth_getFilterLogs, eth_uninstallFilter — kept as go-ethereum keeps them: in
this node's memory, and dropped after five minutes without a poll.

A filter is stored as its parsed criteria (`params.LogFilter`), never the raw
JSON, and counted against the client that installed it: one client cannot
crowd out the others, and the whole table is bounded by what it holds."""
from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from node.rpc import format as fmt
from node.rpc import params
from node.rpc.budget import check_budget, current_client
from node.rpc.errors import SERVER_ERROR, RpcError, invalid_params
from node.rpc.eth import EthApi
from node.rpc.params import LogFilter

FILTER_TIMEOUT = 300.0
"""Seconds without a poll after which a filter is dropped (go-ethereum's filter deadline, 5 min)."""
MAX_FILTERS_PER_CLIENT = 100
"""Filters one client (remote address) may hold. go-ethereum and Besu cap only by the
timeout; a per-client count keeps one client from using up the table for everyone."""
MAX_FILTER_ENTRIES_PER_CLIENT = 10_000
"""Entries (one per filter, plus one per address or topic it lists) one client may hold:
a filter may list up to 5,000 criteria, so counting filters alone does not bound memory."""
MAX_FILTER_ENTRIES = 100_000
"""All clients' entries together (a few MB): the backstop when many addresses install filters."""
FILTER_MAX_BLOCKS_PER_POLL = 1_000
"""Blocks one eth_getFilterChanges reports or scans; a filter left behind (a long sync, a
slow client) catches up over several polls instead of scanning thousands of blocks in one."""


@dataclass
class _Filter:
    client: str
    query: LogFilter | None
    """The parsed criteria of a log filter; None for a block filter."""
    next_block: int
    """The first block not yet reported by eth_getFilterChanges."""
    polled: float

    @property
    def entries(self) -> int:
        return 1 + (self.query.size if self.query is not None else 0)


class FilterApi:
    def __init__(self, eth: EthApi, clock=time.monotonic) -> None:
        self.eth = eth
        self.chain = eth.chain
        self.clock = clock
        self._filters: OrderedDict[str, _Filter] = OrderedDict()
        """By filter id, least recently polled first (so expiry stops at the first live one)."""
        self._held: dict[str, tuple[int, int]] = {}
        """Per client: (filters, entries) it holds."""
        self._entries = 0

    def _install(self, installed: _Filter) -> str:
        self._expire()
        filters, entries = self._held.get(installed.client, (0, 0))
        if filters >= MAX_FILTERS_PER_CLIENT:
            raise RpcError(SERVER_ERROR, f"too many filters installed by this client (limit {MAX_FILTERS_PER_CLIENT})")
        if entries + installed.entries > MAX_FILTER_ENTRIES_PER_CLIENT:
            raise RpcError(SERVER_ERROR, "filters of this client list too many addresses and topics "
                                         f"(limit {MAX_FILTER_ENTRIES_PER_CLIENT}): uninstall some")
        if self._entries + installed.entries > MAX_FILTER_ENTRIES:
            raise RpcError(SERVER_ERROR,
                           f"too many filters installed on this node (limit {MAX_FILTER_ENTRIES} entries)")
        filter_id = "0x" + secrets.token_hex(16)
        self._filters[filter_id] = installed
        self._account(installed, +1)
        return filter_id

    def _account(self, changed: _Filter, sign: int) -> None:
        filters, entries = self._held.get(changed.client, (0, 0))
        filters, entries = filters + sign, entries + sign * changed.entries
        if filters:
            self._held[changed.client] = (filters, entries)
        else:
            del self._held[changed.client]
        self._entries += sign * changed.entries

    def _remove(self, filter_id: str) -> bool:
        removed = self._filters.pop(filter_id, None)
        if removed is not None:
            self._account(removed, -1)
        return removed is not None

    def _expire(self) -> None:
        now = self.clock()
        while self._filters:
            oldest_id, oldest = next(iter(self._filters.items()))
            if now - oldest.polled <= FILTER_TIMEOUT:
                break
            self._remove(oldest_id)

    def _get(self, filter_id) -> _Filter:
        self._expire()
        found = self._filters.get(filter_id) if isinstance(filter_id, str) else None
        if found is None:
            raise RpcError(SERVER_ERROR, "filter not found")
        found.polled = self.clock()
        self._filters.move_to_end(filter_id)
        return found

    def eth_newBlockFilter(self) -> str:
        return self._install(_Filter(current_client(), None, self.chain.head.number + 1, self.clock()))

    def eth_newFilter(self, log_filter) -> str:
        query = params.log_filter(log_filter)
        if query.block_hash is not None:
            raise invalid_params("blockHash is not supported by eth_newFilter: use eth_getLogs")
        start = self.chain.head.number + 1
        if isinstance(query.from_block, int):
            start = max(query.from_block, start)
        return self._install(_Filter(current_client(), query, start, self.clock()))

    def eth_getFilterChanges(self, filter_id):
        """What happened since the last poll, at most FILTER_MAX_BLOCKS_PER_POLL blocks of it;
        the filter moves on only once the answer is complete, so an aborted poll loses nothing."""
        installed = self._get(filter_id)
        first = installed.next_block
        last = min(self.chain.head.number, first + FILTER_MAX_BLOCKS_PER_POLL - 1)
        if installed.query is None:
            changes = []
            for number in range(first, last + 1):
                check_budget()
                changes.append(fmt.hexbytes(self.chain.header_by_number(number).hash))
        else:
            end = self.eth.resolve(installed.query.to_block)
            last = min(last, end.number) if end is not None else last
            changes = self.eth.logs_in(self.eth.canonical_headers(first, last), installed.query)
        installed.next_block = max(first, last + 1)
        return changes

    def eth_getFilterLogs(self, filter_id) -> list[dict]:
        installed = self._get(filter_id)
        if installed.query is None:
            raise RpcError(SERVER_ERROR, "filter is not a log filter")
        return self.eth.logs(installed.query)

    def eth_uninstallFilter(self, filter_id) -> bool:
        self._expire()
        return isinstance(filter_id, str) and self._remove(filter_id)
