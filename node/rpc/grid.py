"""The node's own methods (grid_), and the net_, web3_ and txpool_ namespaces."""
from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Callable
from importlib.metadata import version

from node.chain import Chain
from node.mempool import Mempool
from node.rpc import format as fmt
from node.rpc.errors import invalid_params
from vm.native import NATIVE_CONTRACTS

VERSION = version("gridnode")
CLIENT_VERSION = f"gridnode/v{VERSION}/{platform.system().lower()}-{platform.machine()}/python{platform.python_version()}"


@dataclass(frozen=True)
class NodeIdentity:
    """Facts about this process that the chain doesn't know."""

    producer: str | None
    datadir: str
    rpc_url: str
    peer_id: str | None = None


class GridApi:
    def __init__(self, chain: Chain, mempool: Mempool, identity: NodeIdentity,
                 peer_count: Callable[[], int] = lambda: 0) -> None:
        self.chain = chain
        self.mempool = mempool
        self.identity = identity
        self.peer_count = peer_count

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

    def grid_contracts(self) -> dict:
        return {contract.name: {"address": contract.address.to_checksum(), "abi": contract.abi}
                for contract in NATIVE_CONTRACTS.values()}

    def grid_miningStats(self, window=None) -> dict:
        """Blocks won and orphaned per producer over the last `window` canonical blocks
        (default all), each producer's measured share, and the current difficulty."""
        head = self.chain.head
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise invalid_params("window must be a positive number of blocks")
        first = max(head.number - window + 1, 1) if window else 1
        won: dict = {}
        for number in range(first, head.number + 1):
            producer = self.chain.header_by_number(number).producer
            won[producer] = won.get(producer, 0) + 1
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
