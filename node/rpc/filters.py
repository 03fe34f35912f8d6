"""Polling filters — eth_newFilter, eth_newBlockFilter, eth_getFilterChanges,
eth_getFilterLogs, eth_uninstallFilter — kept as go-ethereum keeps them: in
this node's memory, and dropped after five minutes without a poll."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from node.rpc import format as fmt
from node.rpc import params
from node.rpc.errors import SERVER_ERROR, RpcError, invalid_params
from node.rpc.eth import EthApi, filter_criteria

FILTER_TIMEOUT = 300.0
MAX_FILTERS = 1000


@dataclass
class _Filter:
    kind: str
    """"blocks" or "logs"."""
    next_block: int
    """The first block not yet reported by eth_getFilterChanges."""
    polled: float
    query: dict = field(default_factory=dict)
    """The original log filter object (for eth_getFilterLogs)."""


class FilterApi:
    def __init__(self, eth: EthApi, clock=time.monotonic) -> None:
        self.eth = eth
        self.chain = eth.chain
        self.clock = clock
        self._filters: dict[str, _Filter] = {}

    def _install(self, installed: _Filter) -> str:
        self._expire()
        if len(self._filters) >= MAX_FILTERS:
            raise RpcError(SERVER_ERROR, f"too many filters installed (limit {MAX_FILTERS})")
        filter_id = "0x" + secrets.token_hex(16)
        self._filters[filter_id] = installed
        return filter_id

    def _expire(self) -> None:
        now = self.clock()
        for filter_id in [i for i, f in self._filters.items() if now - f.polled > FILTER_TIMEOUT]:
            del self._filters[filter_id]

    def _get(self, filter_id) -> _Filter:
        self._expire()
        found = self._filters.get(filter_id) if isinstance(filter_id, str) else None
        if found is None:
            raise RpcError(SERVER_ERROR, "filter not found")
        found.polled = self.clock()
        return found

    def eth_newBlockFilter(self) -> str:
        return self._install(_Filter("blocks", self.chain.head.number + 1, self.clock()))

    def eth_newFilter(self, log_filter) -> str:
        if not isinstance(log_filter, dict):
            raise invalid_params("filter object expected")
        filter_criteria(log_filter)  # reject a malformed filter now, not at the first poll
        start = self.chain.head.number + 1
        if "fromBlock" in log_filter:
            tag = params.block_id(log_filter["fromBlock"], "fromBlock")
            if isinstance(tag, int):
                start = max(tag, start)
        return self._install(_Filter("logs", start, self.clock(), dict(log_filter)))

    def eth_getFilterChanges(self, filter_id):
        installed = self._get(filter_id)
        head = self.chain.head.number
        first, installed.next_block = installed.next_block, head + 1
        if installed.kind == "blocks":
            return [fmt.hexbytes(self.chain.header_by_number(n).hash) for n in range(first, head + 1)]
        last = head
        if "toBlock" in installed.query:
            tag = params.block_id(installed.query["toBlock"], "toBlock")
            last = min(head, tag) if isinstance(tag, int) else head
        addresses, topics = filter_criteria(installed.query)
        return self.eth.logs_in((self.chain.header_by_number(n) for n in range(first, last + 1)), addresses, topics)

    def eth_getFilterLogs(self, filter_id) -> list[dict]:
        installed = self._get(filter_id)
        if installed.kind != "logs":
            raise RpcError(SERVER_ERROR, "filter is not a log filter")
        return self.eth.eth_getLogs(installed.query)

    def eth_uninstallFilter(self, filter_id) -> bool:
        self._expire()
        return self._filters.pop(filter_id, None) is not None if isinstance(filter_id, str) else False
