"""Checking the mLAG's aggregate bit for bit (PoSOC, eq. 4.19) and challenging a wrong one.

`check_round` is the check itself: the round's posted aggregate against FedAvg of the included
updates (the bytes whose hashes the EVs committed to), in fixed point, so every node computes the
same answer. `grid_checkAggregate` (node/rpc/models.py) shows it; `AggregateChecker` runs it after
every block that carries an AGGREGATE to the engine, the way `node.evidence.EvidenceReporter`
reports equivocation: on a node with a signing key, as an asyncio task (the updates are fetched
over libp2p, FedAvg runs in a worker thread), and if the aggregate does not match it sends the
CHALLENGE_AGGREGATE transaction itself, once per round per process. The validators take turns
(STAGGER_SECONDS apart, in the genesis order) and each sends only if the aggregate is not voided by
then, so one challenge usually does, not one per node. An update nobody serves
leaves the round unchecked (it is tried again a few times): a challenge must carry every
included update."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

from consensus.engine import Signer
from consensus.posoc.engine import AGGREGATE, POSOC_ADDRESS, ProofOfStateOfCharge, challenge
from consensus.rules.fedavg import ModelError, aggregate_hash
from node.chain import Chain
from node.intake import TransactionIntake
from node.models import ModelStore
from vm.blocks import Header
from vm.codec import MalformedRLP, decode as rlp_decode, uint
from vm.gas import intrinsic_gas
from vm.state import State
from vm.transactions import InvalidTransaction, sign_legacy
from vm.transition import TransactionRejected

log = logging.getLogger("gridnode.models")

FETCH_SECONDS = 10.0
"""How long one check waits for peers to serve the included updates."""
ATTEMPTS = 3
RETRY_SECONDS = 5.0
"""A round whose updates were not all served is checked again this much later, ATTEMPTS times in all."""
STAGGER_SECONDS = 2.0
"""How long each validator waits after the one before it in the genesis set before challenging."""
MAX_SCAN = 64
"""Blocks looked at per head change (a long sync is not re-checked block by block)."""
MAX_CHECKED = 1024
"""Rounds remembered as checked; past it the memory starts over."""

FetchModels = Callable[[list[bytes], float], concurrent.futures.Future]
"""Hashes and a deadline in seconds → a future of the models found, by hash (P2PService.fetch_models)."""


class NoAggregate(LookupError):
    """The round has no aggregate on chain, or the chain does not run PoSOC."""


def included_updates(engine, state: State, round_: int) -> tuple[dict, list[tuple[str, bytes]]]:
    """The round's aggregate record (`aggregate_record`) and its included EVs' committed hashes, in order."""
    if not isinstance(engine, ProofOfStateOfCharge):
        raise NoAggregate(f"this chain runs {engine.name}, not posoc: it keeps no aggregates")
    record = engine.aggregate_record(state, round_)
    if record is None:
        raise NoAggregate(f"round {round_} has no aggregate")
    evs = {ev.address.to_checksum(): ev.address for ev in engine.config.evs}
    hashes = [(name, engine.update_record(state, round_, evs[name])["hash"]) for name in record["included"]]
    return record, hashes


def check_round(record: dict, hashes: list[tuple[str, bytes]], blobs: dict[bytes, bytes]) -> dict:
    """The verdict on one aggregate, given the updates at hand (`blobs`, by hash): match is None
    when an included update is missing, False when one is malformed or FedAvg's hash differs."""
    missing = [name for name, model_hash in hashes if model_hash not in blobs]
    report = {"round": record["round"], "hash": record["hash"], "included": record["included"],
              "voided": record["voided"], "computedHash": None, "match": None, "missing": missing, "reason": ""}
    if missing:
        report["reason"] = f"{len(missing)} of the {len(hashes)} included updates could not be fetched"
        return report
    try:
        computed = aggregate_hash([blobs[model_hash] for _, model_hash in hashes])
    except ModelError as error:
        report.update(match=False, reason=f"an included update is malformed: {error}")
        return report
    report["computedHash"] = "0x" + computed.hex()
    report["match"] = report["computedHash"] == record["hash"]
    if not report["match"]:
        report["reason"] = f"FedAvg of the included updates is {report['computedHash']}, the mLAG posted {record['hash']}"
    return report


def gather(store: ModelStore, hashes: list[tuple[str, bytes]]) -> tuple[dict[bytes, bytes], list[bytes]]:
    """The updates the local store holds, and the hashes still to fetch."""
    found = {h: blob for h in dict.fromkeys(h for _, h in hashes) if (blob := store.get(h)) is not None}
    return found, [h for h in dict.fromkeys(h for _, h in hashes) if h not in found]


def keep(store: ModelStore, blobs: dict[bytes, bytes]) -> None:
    """Store fetched updates that are well-formed models (the rest are kept for this check only)."""
    for blob in blobs.values():
        try:
            store.put(blob)
        except ModelError:
            continue


class AggregateChecker:
    def __init__(self, chain: Chain, intake: TransactionIntake, signer: Signer, store: ModelStore,
                 fetch: FetchModels | None, loop: asyncio.AbstractEventLoop) -> None:
        self.chain, self.intake, self.signer, self.store = chain, intake, signer, store
        self.fetch, self.loop = fetch, loop
        self._checked: set[int] = set()
        self._running: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self._seen = chain.head.number
        chain.subscribe(lambda head, orphaned: self._on_head(head))

    def _on_head(self, head: Header) -> None:
        try:
            self.loop.call_soon_threadsafe(self.follow, head)
        except RuntimeError:  # the node's loop is closed (the node stopped): nothing left to check
            return

    def follow(self, head: Header) -> None:
        """After a head change (on the loop): start a check for each round aggregated in the new blocks."""
        first = max(self._seen + 1, head.number - MAX_SCAN + 1, 1)
        self._seen = head.number
        for number in range(first, head.number + 1):
            header = self.chain.header_by_number(number)
            block = self.chain.block(header.hash) if header is not None else None
            for tx in block.transactions if block is not None else ():
                round_ = _aggregated_round(tx)
                if round_ is not None and round_ not in self._checked and round_ not in self._running:
                    self._running.add(round_)
                    task = self.loop.create_task(self.check(round_), name=f"aggregate check {round_}")
                    self._tasks.add(task)
                    task.add_done_callback(self._done)

    async def check(self, round_: int) -> dict | None:
        """Check one round (with retries while updates are missing); challenge it if it is wrong."""
        try:
            for attempt in range(ATTEMPTS):
                try:
                    record, hashes = included_updates(self.chain.engine, self.chain.state(), round_)
                except NoAggregate:
                    return None  # refused by the engine, or reorganised away
                blobs, wanted = gather(self.store, hashes)
                if wanted and self.fetch is not None:
                    try:
                        fetched = await asyncio.wait_for(asyncio.wrap_future(self.fetch(wanted, FETCH_SECONDS)),
                                                         FETCH_SECONDS + 5)
                    except asyncio.TimeoutError:
                        fetched = {}
                    blobs.update(fetched)
                    await asyncio.to_thread(keep, self.store, fetched)
                report = await asyncio.to_thread(check_round, record, hashes, blobs)
                if report["match"] is not None:
                    self._remember(round_)
                    if not report["match"] and not report["voided"]:
                        log.warning("aggregate mismatch", extra={"round": round_, "reason": report["reason"]})
                        await asyncio.sleep(self._turn() * STAGGER_SECONDS)
                        if self.chain.engine.aggregate_record(self.chain.state(), round_) == {**record, "voided": False}:
                            self._send(round_, [blobs[h] for _, h in hashes])
                        else:
                            log.info("aggregate challenged by another node", extra={"round": round_})
                    return report
                log.info("aggregate not checked yet", extra={"round": round_, "reason": report["reason"],
                                                             "attempt": attempt + 1})
                await asyncio.sleep(RETRY_SECONDS)
            self._remember(round_)
            return None
        finally:
            self._running.discard(round_)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("aggregate check failed", exc_info=task.exception())

    def _turn(self) -> int:
        """This node's place among the validators (those outside the set go last)."""
        validators = list(self.chain.engine.set.validators)
        return validators.index(self.signer.address) if self.signer.address in validators else len(validators)

    def _remember(self, round_: int) -> None:
        if len(self._checked) >= MAX_CHECKED:
            self._checked.clear()
        self._checked.add(round_)

    def _send(self, round_: int, blobs: list[bytes]) -> None:
        data = challenge(round_, blobs)
        address = self.signer.address
        nonce = self.intake.mempool.pending_nonce(address, self.chain.state().get_account(address).nonce)
        raw = sign_legacy(self.chain.chain_id, nonce, self.intake.next_base_fee() * 2, intrinsic_gas(data),
                          POSOC_ADDRESS, 0, data, self.signer.private_key)
        try:
            tx, _ = self.intake.submit(raw)
        except (InvalidTransaction, TransactionRejected) as exc:
            log.warning("aggregate challenge not sent", extra={"round": round_, "reason": str(exc)})
            return
        log.warning("aggregate mismatch: sent challenge", extra={"round": round_, "tx": "0x" + tx.hash.hex()})


def _aggregated_round(tx) -> int | None:
    """The round an AGGREGATE transaction to the engine names, or None for any other transaction."""
    if tx.to != POSOC_ADDRESS or tx.data[:1] != AGGREGATE:
        return None
    try:
        items = rlp_decode(tx.data[1:], max_depth=2)
        return uint(items[0], "round", 8) if isinstance(items, list) and items else None
    except MalformedRLP:
        return None
