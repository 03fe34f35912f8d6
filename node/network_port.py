"""The node's implementation of the network's `ChainPort`: what peers may ask
of the chain and mempool. Runs on the asyncio loop thread (the bridge sees to it)."""
from __future__ import annotations

from node.chain import Chain, ImportStatus, UnknownParent
from node.intake import TransactionIntake
from node.p2p.port import ChainStatus, ImportResult, Outcome
from vm.blocks import InvalidBlock
from vm.native.registry import REGISTRY
from vm.transactions import InvalidTransaction
from vm.transition import TransactionRejected

MALICIOUS_TRANSACTION_ERRORS = ("invalid chain id", "invalid sender", "oversized data", "malformed")
"""Rejections no honest node would relay; any other (nonce too low, …) can be a race, not an attack."""


class NodeChainPort:
    def __init__(self, chain: Chain, intake: TransactionIntake) -> None:
        self.chain = chain
        self.intake = intake

    def status(self) -> ChainStatus:
        head = self.chain.head
        return ChainStatus(self.chain.chain_id, self.chain.genesis_block_hash(), head.number, head.hash,
                           self.chain.total_weight(head.hash))

    def import_block(self, encoded_block: bytes) -> ImportResult:
        try:
            block = self.chain.decode_block(encoded_block)
        except InvalidBlock as exc:
            return ImportResult(Outcome.INVALID, str(exc))
        try:
            status = self.chain.import_block(block)
        except UnknownParent as exc:
            return ImportResult(Outcome.UNKNOWN_PARENT, str(exc), block.header.number)
        except InvalidBlock as exc:
            return ImportResult(Outcome.INVALID, str(exc), block.header.number)
        outcome = Outcome.KNOWN if status is ImportStatus.KNOWN else Outcome.ACCEPTED
        return ImportResult(outcome, status.value, block.header.number)

    def add_transaction(self, raw_transaction: bytes) -> ImportResult:
        try:
            _, is_new = self.intake.submit(raw_transaction, from_network=True)
        except (InvalidTransaction, TransactionRejected) as exc:
            reason = str(exc)
            malicious = isinstance(exc, InvalidTransaction) or reason.startswith(MALICIOUS_TRANSACTION_ERRORS)
            return ImportResult(Outcome.INVALID if malicious else Outcome.KNOWN, reason)
        return ImportResult(Outcome.ACCEPTED if is_new else Outcome.KNOWN)

    def blocks(self, start: int, count: int) -> list[bytes]:
        encoded = []
        for number in range(max(start, 0), min(start + count, self.chain.head.number + 1)):
            encoded.append(self.chain.block(self.chain.store.canonical_hash(number)).encode())
        return encoded

    def canonical_hash(self, number: int) -> bytes | None:
        header = self.chain.header_by_number(number)
        return header.hash if header else None

    def is_admitted(self, peer_id: str) -> bool:
        return peer_id in self.chain.genesis.nodes or REGISTRY.is_node_admitted(self.chain.state(), peer_id)
