"""Wires a node together and runs it until SIGINT/SIGTERM: store, chain,
mempool, block producer and the RPC server. The core objects are plain and
synchronous; this module is the only place that owns the asyncio loop."""
from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from consensus.engine import SealOptions, Signer
from consensus.posoc.engine import ProofOfStateOfCharge
from genesis.config import Genesis
from node.aggregate_check import AggregateChecker
from node.byzantine import Misbehaviour, flood
from node.chain import Chain
from node.datadir import DataDir
from node.evidence import EvidenceReporter
from node.intake import TransactionIntake
from node.mempool import Mempool, MempoolLimits
from node.models import ModelStore
from node.network_port import NodeChainPort
from node.p2p.service import P2PConfig, P2PService
from node.producer import BlockProducer
from node.rpc.admin import AdminApi
from node.rpc.eth import EthApi
from node.rpc.filters import FilterApi
from node.rpc.grid import GridApi, NodeIdentity
from node.rpc.harness import HarnessApi
from node.rpc.models import ModelApi
from node.rpc.server import JsonRpcServer, RpcConfig, collect_methods
from node.store import Store
from node.txjournal import TxJournal
from vm.types import Address

log = logging.getLogger("gridnode.node")

REANNOUNCE_INTERVAL = 3.0
JOURNAL_COMPACT_INTERVAL = 60.0
"""How often the transaction journal is rewritten with only what is still pending."""


@dataclass(frozen=True)
class NodeConfig:
    datadir: DataDir
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8545
    signer: Signer | None = None
    rpc: RpcConfig = RpcConfig()
    """Who may call the JSON-RPC endpoint and what one request may cost."""
    mempool: MempoolLimits = MempoolLimits()
    accounts: tuple[Address, ...] = ()
    """Keystore addresses reported by eth_accounts."""
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/30303",)
    """libp2p listen multiaddrs; empty runs the node without networking."""
    bootnodes: tuple[str, ...] = ()
    seal: SealOptions = SealOptions()
    bid_ordering: bool = True
    """Whether the producer orders each auction's bids in a block by ascending total (node/bid_order.py)."""
    harness: bool = False
    """Started by the fault harness on a test chain: serves harness_ (clock skew, byzantine modes)."""


def open_chain(datadir: DataDir, genesis: Genesis | None = None) -> tuple[Store, Chain]:
    """Open the data dir's chain; with `genesis`, initialise it (or check it matches)."""
    store = Store(str(datadir.chaindata))
    try:
        if genesis is None:
            document = store.genesis_document()
            if document is None:
                raise FileNotFoundError(f"{datadir.root} is not initialised: run gridnode init")
            genesis = Genesis.from_json(json.loads(document))
        return store, Chain(store, genesis, genesis.create_engine())
    except BaseException:
        store.close()
        raise


class Node:
    def __init__(self, config: NodeConfig, store: Store, chain: Chain) -> None:
        self.config = config
        self.store = store
        self.chain = chain
        self.mempool = Mempool(chain.chain_id, chain.genesis.gas_limit, config.mempool)
        self.intake = TransactionIntake(chain, self.mempool)
        self.intake.journal = TxJournal(config.datadir.txpool_journal)
        self.network: P2PService | None = None
        self.models = ModelStore(config.datadir.root / "models")
        """Federated learning's models, by hash (node/models.py), served to peers (node/p2p/models.py)."""
        self.aggregate_checker: AggregateChecker | None = None
        signer = config.signer
        self.evidence = EvidenceReporter(chain, self.intake, signer)
        self.misbehaviour = Misbehaviour() if config.harness else None
        self.producer = (BlockProducer(chain, self.mempool, signer, announce=self._announce_block, options=config.seal,
                                       bid_ordering=config.bid_ordering, misbehaviour=self.misbehaviour)
                         if signer else None)
        self.rpc_url = f"http://{config.rpc_host}:{config.rpc_port}"

    async def _reannounce_forever(self) -> None:
        while True:
            await asyncio.sleep(REANNOUNCE_INTERVAL)
            self.intake.reannounce(time.monotonic())

    async def _compact_journal_forever(self) -> None:
        while True:
            await asyncio.sleep(JOURNAL_COMPACT_INTERVAL)
            self.intake.compact()

    def _announce_block(self, block) -> None:
        if self.network is not None:
            self.network.publish_block(block.encode())

    def _rpc(self) -> JsonRpcServer:
        network = self.network
        identity = NodeIdentity(self.config.signer.address.to_checksum() if self.config.signer else None,
                                str(self.config.datadir.root), self.rpc_url, network.peer_id if network else None)
        eth = EthApi(self.chain, self.intake, list(self.config.accounts),
                     network.sync_progress if network else (lambda: None))
        apis = [eth, FilterApi(eth),
                GridApi(self.chain, self.mempool, identity, network.peer_count if network else (lambda: 0)),
                AdminApi(network, self.evidence), ModelApi(self.chain, self.models, network.fetch_models if network else None)]
        if self.misbehaviour is not None:
            apis.append(HarnessApi(self.chain.clock, self.misbehaviour))
        return JsonRpcServer(collect_methods(*apis), self.config.rpc)

    def _start_network(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.config.listen:
            return
        config = P2PConfig(datadir=self.config.datadir.root, listen=self.config.listen,
                           bootnodes=self.config.bootnodes, chain_id=self.chain.chain_id,
                           genesis_hash=self.chain.genesis_block_hash())
        self.network = P2PService(config, NodeChainPort(self.chain, self.intake, self.evidence,
                                                           self.misbehaviour), loop, self.models.get)
        self.network.start()
        self.intake.announce = self.network.publish_transaction
        log.info("p2p listening", extra={"peer_id": self.network.peer_id,
                                          "addrs": " ".join(self.network.listen_addrs())})

    async def run(self, on_ready: Callable[["Node"], None] | None = None) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        unwritable = loop.create_future()
        """Fails with the store's error once a write fails (produced, imported, from any thread): the node stops."""

        def _unwritable(error: Exception) -> None:
            loop.call_soon_threadsafe(lambda: unwritable.done() or unwritable.set_exception(error))

        self.store.on_unwritable.append(_unwritable)
        self._start_network(loop)
        if self.config.signer and isinstance(self.chain.engine, ProofOfStateOfCharge):
            self.aggregate_checker = AggregateChecker(self.chain, self.intake, self.config.signer, self.models,
                                                      self.network.fetch_models if self.network else None, loop)
        runner = web.AppRunner(self._rpc().app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.rpc_host, self.config.rpc_port)
            await site.start()
            port = runner.addresses[0][1]
            self.rpc_url = f"http://{self.config.rpc_host}:{port}"
            restored = self.intake.restore()
            if restored:
                log.info("restored pending transactions from the journal", extra={"count": restored})
            tasks = [asyncio.create_task(self._compact_journal_forever(), name="journal")]
            if self.network is not None:
                tasks.append(asyncio.create_task(self._reannounce_forever(), name="reannounce"))
            if self.producer:
                tasks.append(asyncio.create_task(self.producer.run(), name="producer"))
            if self.misbehaviour is not None and self.network is not None and self.config.signer:
                tasks.append(asyncio.create_task(flood(self.misbehaviour, self.network.publish_transaction,
                                                       self.chain.chain_id, self.config.signer), name="flood"))
            log.info("node started", extra={"rpc": self.rpc_url, "chain_id": self.chain.chain_id,
                                            "head": self.chain.head.number})
            if on_ready:
                on_ready(self)
            waiter = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([waiter, unwritable, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in [waiter, *tasks]:
                task.cancel()
            await asyncio.gather(waiter, *tasks, return_exceptions=True)
            for task in [unwritable, *tasks]:
                if task in done:
                    task.result()  # a failed write or a crashed producer stops the node with its error
        finally:
            await runner.cleanup()
            if self.network is not None:
                self.network.stop()
            self.intake.compact()
            self.intake.journal.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            log.info("node stopped", extra={"head": self.chain.head.number})
