"""What a node observes of producers in peers' blocks: equivocation (two children of one parent
sealed by one producer: two blocks for one slot; a producer sealing again at a height after a
reorg, on another parent, is honest) and missed turns. Every node records both
(`admin_misbehaviour`); a node with a signing key also sends the engine's evidence transaction,
as an honest validator would (engines that slash for it say how: `Engine.equivocation_evidence`).
Each pair is recorded and reported once per process; the engine punishes once per height
whoever sends it."""
from __future__ import annotations

import logging
from collections import Counter, deque

from consensus.engine import Signer
from node.chain import Chain
from node.intake import TransactionIntake
from vm.blocks import Header
from vm.gas import intrinsic_gas
from vm.transactions import InvalidTransaction, sign_legacy
from vm.transition import TransactionRejected

log = logging.getLogger("gridnode.evidence")

MAX_REPORTED = 1024
"""Pairs remembered as reported; past it the memory starts over (a repeat costs one transaction)."""
MAX_OBSERVED = 256
"""Equivocations kept for `admin_misbehaviour`, newest last."""


class EvidenceReporter:
    def __init__(self, chain: Chain, intake: TransactionIntake, signer: Signer | None) -> None:
        self.chain, self.intake, self.signer = chain, intake, signer
        self._reported: set[frozenset[bytes]] = set()
        self.equivocations: deque[dict] = deque(maxlen=MAX_OBSERVED)
        self.missed_turns: Counter[str] = Counter()
        """Producer → turns it let pass that a peer's block filled (the engine says whose they were)."""

    def twins(self, header: Header) -> list[Header]:
        """Other stored children of `header`'s parent sealed by its producer: canonical or side."""
        hashes = {block_hash for _, block_hash, _ in self.chain.store.side_blocks(header.number, header.number)}
        canonical = self.chain.store.canonical_hash(header.number)
        if canonical is not None:
            hashes.add(canonical)
        hashes.discard(header.hash)
        found = (self.chain.header_by_hash(h) for h in sorted(hashes))
        return [other for other in found if other is not None and other.producer == header.producer
                and other.parent_hash == header.parent_hash]

    def check(self, header: Header) -> None:
        """After `header` was stored: note a missed turn, and record (and report) any twin, once."""
        missed = self.chain.engine.missed_producer(self.chain, header)
        if missed is not None:
            self.missed_turns[missed.to_checksum()] += 1
            log.info("a producer missed its turn", extra={"number": header.number, "producer": missed.to_checksum(),
                                                          "sealed_by": header.producer.to_checksum()})
        for twin in self.twins(header):
            pair = frozenset((header.hash, twin.hash))
            if pair in self._reported:
                continue
            if len(self._reported) >= MAX_REPORTED:
                self._reported.clear()
            self._reported.add(pair)
            first, second = sorted((twin, header), key=lambda h: h.hash)
            self.equivocations.append({"number": header.number, "producer": header.producer.to_checksum(),
                                       "headers": ["0x" + h.encode().hex() for h in (first, second)],
                                       "hashes": ["0x" + h.hash.hex() for h in (first, second)]})
            log.warning("equivocation observed", extra={"number": header.number,
                                                        "producer": header.producer.to_checksum(),
                                                        "hashes": " ".join("0x" + h.hash.hex() for h in (first, second))})
            message = self.chain.engine.equivocation_evidence(twin, header)
            if message is not None and self.signer is not None:
                self._send(*message, header)

    def _send(self, to, data: bytes, header: Header) -> None:
        address = self.signer.address
        nonce = self.intake.mempool.pending_nonce(address, self.chain.state().get_account(address).nonce)
        raw = sign_legacy(self.chain.chain_id, nonce, self.intake.next_base_fee() * 2, intrinsic_gas(data), to, 0,
                          data, self.signer.private_key)
        try:
            tx, _ = self.intake.submit(raw)
        except (InvalidTransaction, TransactionRejected) as exc:
            log.warning("equivocation evidence not sent", extra={"number": header.number, "reason": str(exc)})
            return
        log.warning("equivocation: sent evidence", extra={"number": header.number,
                                                          "producer": header.producer.to_checksum(),
                                                          "tx": "0x" + tx.hash.hex()})
