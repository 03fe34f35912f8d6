"""The node's own methods (grid_), and the net_, web3_ and txpool_ namespaces."""
from __future__ import annotations

import platform
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from typing import Callable, Iterable
from importlib.metadata import version

from node.chain import MAX_REORG_DEPTH, Chain
from node.mempool import Mempool
from node.rpc import format as fmt
from node.rpc.errors import invalid_params
from vm.blocks import Header
from vm.types import Address

VERSION = version("gridnode")
CLIENT_VERSION = f"gridnode/v{VERSION}/{platform.system().lower()}-{platform.machine()}/python{platform.python_version()}"


@dataclass(frozen=True)
class NodeIdentity:
    """Facts about this process that the chain doesn't know."""

    producer: str | None
    datadir: str
    rpc_url: str
    peer_id: str | None = None


MAX_MINING_WINDOW = 2**64 - 1
"""grid_miningStats' `window` is a block count, so a uint64 like every block number."""


class ProducerIndex:
    """Which heights of the canonical chain each producer sealed, kept up to date on every
    head change, so mining statistics over any window cost a binary search per producer
    instead of a walk over the chain. Built once from the store, then followed block by block."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._heights: dict[Address, array] = {}
        """Per producer, the canonical heights (ascending, from 1) it sealed."""
        self._recent: dict[int, bytes] = {}
        """Hash of each of the last MAX_REORG_DEPTH + 1 indexed heights: where a reorg is detected."""
        self.head = 0
        self._rebuild()
        chain.subscribe(lambda head, orphaned: self.follow(head))

    def _rebuild(self) -> None:
        """Index the canonical chain from the store (the stored hash is used as is:
        re-hashing every header would triple the start-up time)."""
        self._heights, self._recent, self.head = {}, {}, 0
        store = self.chain.store
        hashes = (store.canonical_hash(n) for n in range(1, self.chain.head.number + 1))
        self._append((block_hash, store.header(block_hash)) for block_hash in hashes)

    def _append(self, blocks: Iterable[tuple[bytes, Header]]) -> None:
        """Index (hash, header) pairs that extend the indexed chain, lowest first."""
        for block_hash, header in blocks:
            self._heights.setdefault(header.producer, array("q")).append(header.number)
            self._recent[header.number] = block_hash
            self._recent.pop(header.number - MAX_REORG_DEPTH - 1, None)
            self.head = header.number

    def _truncate(self, height: int) -> None:
        """Forget every indexed height above `height` (a branch being replaced)."""
        for producer in list(self._heights):
            heights = self._heights[producer]
            while heights and heights[-1] > height:
                heights.pop()
            if not heights:
                del self._heights[producer]
        for number in range(height + 1, self.head + 1):
            self._recent.pop(number, None)
        self.head = height

    def follow(self, head: Header) -> None:
        """Catch up with a new head: walk back from it to the first height whose indexed
        hash still matches, drop what is above, append the new branch."""
        branch = []
        header = head
        while header.number > 0 and self._recent.get(header.number) != header.hash:
            if header.number <= self.head - MAX_REORG_DEPTH:  # below what is remembered: start afresh
                self._rebuild()
                return
            branch.append(header)
            header = self.chain.header_by_hash(header.parent_hash)
        self._truncate(header.number)
        self._append((block.hash, block) for block in reversed(branch))

    def blocks_since(self, first: int) -> dict[Address, int]:
        """Blocks each producer sealed at heights first..head."""
        won = {producer: len(heights) - bisect_left(heights, first) for producer, heights in self._heights.items()}
        return {producer: count for producer, count in won.items() if count}


class GridApi:
    def __init__(self, chain: Chain, mempool: Mempool, identity: NodeIdentity,
                 peer_count: Callable[[], int] = lambda: 0) -> None:
        self.chain = chain
        self.mempool = mempool
        self.identity = identity
        self.peer_count = peer_count
        self.producers = ProducerIndex(chain)

    def web3_clientVersion(self) -> str:
        return CLIENT_VERSION

    def net_version(self) -> str:
        return str(self.chain.chain_id)

    def net_listening(self) -> bool:
        return True

    def net_peerCount(self) -> str:
        return fmt.hexint(self.peer_count())

    def grid_nodeInfo(self) -> dict:
        head = self.chain.head
        pending, queued = self.mempool.counts(self.chain.state())
        return {
            "client": CLIENT_VERSION,
            "network": self.chain.genesis.name,
            "chainId": self.chain.chain_id,
            "genesisHash": fmt.hexbytes(self.chain.genesis_block_hash()),
            "head": {"number": head.number, "hash": fmt.hexbytes(head.hash), "timestamp": head.timestamp},
            "consensus": {"engine": self.chain.engine.name, "blockTime": self.chain.genesis.block_time},
            "producer": self.identity.producer,
            "datadir": self.identity.datadir,
            "rpc": self.identity.rpc_url,
            "peerId": self.identity.peer_id,
            "txpool": {"pending": pending, "queued": queued},
            "peers": self.peer_count(),
        }

    def grid_validators(self) -> dict:
        """Who may produce the next block, and who produced the recent ones."""
        head = self.chain.head
        recent = [self.chain.header_by_number(n) for n in range(max(head.number - 15, 1), head.number + 1)]
        return {"engine": self.chain.engine.name, "blockNumber": head.number,
                "validators": [a.to_checksum() for a in self.chain.engine.validators(self.chain, head)],
                "recentProducers": [{"number": h.number, "producer": h.producer.to_checksum(),
                                     "difficulty": h.difficulty} for h in recent]}

    def grid_poeg(self) -> dict:
        """Proof of energy generation's view at the head: the slot, the producer drawn and its
        fallback order, stakes, EPOS stakes, slashes, every prosumer's score and reward credits,
        and the last settlement's coalitions and shares."""
        return self._engine_view("poeg")

    def grid_posoc(self) -> dict:
        """Proof of state of charge's view at the head: the window and hour, the mLAG drawn for
        the window and the producer order, stakes, slashes, every EV's last window score, the
        model rounds, and the V2V market's mining fees (charged, paid, confiscated, still owed)."""
        view = self._engine_view("posoc")
        market = self.chain.contracts.by_name("V2VMarket")
        if market is not None:
            fees = market.fee_totals_at(self.chain.state(), market.address)
            view["fees"] = {**fees, "owed": fees["charged"] - fees["paid"] - fees["confiscated"]}
        return view

    def _engine_view(self, name: str) -> dict:
        view = self.chain.engine.status(self.chain, self.chain.state())
        if view is None or view["engine"] != name:
            raise invalid_params(f"this chain runs {self.chain.engine.name}, not {name}: grid_{name} has nothing to show")
        return view

    def grid_contracts(self) -> dict:
        """The chain's contract table (name → address and ABI), what a wallet needs to call them;
        a kind that runs only in instances a factory creates (an auction) has address null."""
        table = self.chain.contracts
        listing = {contract.name: {"address": contract.address.to_checksum(), "abi": contract.abi}
                   for contract in table.placed()}
        listing.update({kind.name: {"address": None, "abi": kind.abi} for kind in table.instance_kinds()})
        return listing

    def grid_miningStats(self, window=None) -> dict:
        """Blocks won and orphaned per producer over the last `window` canonical blocks
        (default all), each producer's measured share, and the current difficulty."""
        head = self.chain.head
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or not 1 <= window <= MAX_MINING_WINDOW):
            raise invalid_params(f"window must be a number of blocks between 1 and {MAX_MINING_WINDOW}")
        first = max(head.number - window + 1, 1) if window else 1
        won = self.producers.blocks_since(first)
        orphaned: dict = {}
        for producer in self.chain.orphans.values():
            orphaned[producer] = orphaned.get(producer, 0) + 1
        blocks = head.number - first + 1 if head.number else 0
        miners = sorted(set(won) | set(orphaned), key=lambda a: a.to_checksum())
        return {
            "engine": self.chain.engine.name, "fromBlock": first, "toBlock": head.number, "blocks": blocks,
            "orphans": len(self.chain.orphans), "difficulty": head.difficulty,
            "orphanRate": len(self.chain.orphans) / (blocks + len(self.chain.orphans)) if blocks else 0.0,
            "miners": [{"address": m.to_checksum(), "blocks": won.get(m, 0), "orphans": orphaned.get(m, 0),
                        "share": won.get(m, 0) / blocks if blocks else 0.0} for m in miners],
        }

    def txpool_status(self) -> dict:
        pending, queued = self.mempool.counts(self.chain.state())
        return {"pending": fmt.hexint(pending), "queued": fmt.hexint(queued)}
