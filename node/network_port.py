"""The node's implementation of the network's `ChainPort`: what peers may ask
of the chain and mempool. Runs on the asyncio loop thread (the bridge sees to it)."""
from __future__ import annotations

from node.chain import BlockRefused, Chain, ImportStatus, UnknownParent
from node.byzantine import Misbehaviour, lie
from node.evidence import EvidenceReporter
from node.intake import TransactionIntake, UnregisteredSender
from node.p2p.port import ChainStatus, ImportResult, Outcome
from node.p2p.wire import MAX_BLOCKS_RESPONSE_BYTES
from vm.blocks import InvalidBlock, parse_block
from vm.native.registry import REGISTRY
from vm.transactions import InvalidTransaction
from vm.transition import TransactionRejected

MALICIOUS_TRANSACTION_ERRORS = ("invalid chain id", "invalid sender", "oversized data", "malformed",
                                "contract creation is not supported", "max priority fee per gas higher",
                                "exceeds block gas limit", "intrinsic gas too low")
"""Rejections no honest node would relay: they break rules that hold on every node at every head
(the static checks), so the relaying peer checked nothing. A sender never registered lately is
one too (`UnregisteredSender`). Any other (nonce too low, insufficient funds, base fee, txpool
full, a sender revoked in the last blocks) can be a race between heads, not an attack."""


class NodeChainPort:
    def __init__(self, chain: Chain, intake: TransactionIntake, reporter: EvidenceReporter | None = None,
                 misbehaviour: Misbehaviour | None = None) -> None:
        self.chain = chain
        self.intake = intake
        self.misbehaviour = misbehaviour
        """Set only on a node the fault harness started: in lying-sync it serves damaged blocks."""
        self.reporter = reporter
        """Records the equivocations and missed turns it sees among peers' blocks (and reports them)."""

    def status(self) -> ChainStatus:
        head = self.chain.head
        return ChainStatus(self.chain.chain_id, self.chain.genesis_block_hash(), head.number, head.hash,
                           self.chain.total_weight(head.hash))

    def import_block(self, encoded_block: bytes, durable: bool = True) -> ImportResult:
        """Parse (structure only), then let the chain check header, seal and parent before
        it recovers any sender: a forged block is refused for the price of its seal."""
        try:
            header, raw_transactions = parse_block(encoded_block)
        except InvalidBlock as exc:
            return ImportResult(Outcome.INVALID, str(exc))
        try:
            status = self.chain.import_wire(header, raw_transactions, durable=durable)
        except UnknownParent as exc:
            return ImportResult(Outcome.UNKNOWN_PARENT, str(exc), header.number)
        except BlockRefused as exc:
            return ImportResult(Outcome.IGNORED, str(exc), header.number, ahead=exc.ahead)
        except InvalidBlock as exc:
            return ImportResult(Outcome.INVALID, str(exc), header.number)
        if status is ImportStatus.KNOWN:
            return ImportResult(Outcome.KNOWN, status.value, header.number)
        if self.reporter is not None:
            self.reporter.check(header)
        return ImportResult(Outcome.ACCEPTED, status.value, header.number)

    def add_transaction(self, raw_transaction: bytes) -> ImportResult:
        try:
            _, is_new = self.intake.submit(raw_transaction, from_network=True)
        except (InvalidTransaction, TransactionRejected) as exc:
            reason = str(exc)
            malicious = (isinstance(exc, (InvalidTransaction, UnregisteredSender))
                         or reason.startswith(MALICIOUS_TRANSACTION_ERRORS))
            return ImportResult(Outcome.INVALID if malicious else Outcome.KNOWN, reason)
        return ImportResult(Outcome.ACCEPTED if is_new else Outcome.KNOWN)

    def blocks(self, start: int, count: int) -> list[bytes]:
        """Stops before the block that would take the answer past MAX_BLOCKS_RESPONSE_BYTES, judged
        by its stored size, so a request never makes us encode more than one answer can carry."""
        encoded, size = [], 0
        for number in range(max(start, 0), min(start + count, self.chain.head.number + 1)):
            block_hash = self.chain.store.canonical_hash(number)
            size += self.chain.store.block_size(block_hash)
            if size > MAX_BLOCKS_RESPONSE_BYTES:
                break
            encoded.append(self.chain.block(block_hash).encode())
        if self.misbehaviour is not None and self.misbehaviour.mode == "lying-sync" and encoded:
            encoded = [lie(encoded[0]), *encoded[1:]]
            self.misbehaviour.sent()
        return encoded

    def canonical_hash(self, number: int) -> bytes | None:
        header = self.chain.header_by_number(number)
        return header.hash if header else None

    def is_admitted(self, peer_id: str) -> bool:
        return peer_id in self.chain.genesis.nodes or REGISTRY.is_node_admitted(self.chain.state(), peer_id)
