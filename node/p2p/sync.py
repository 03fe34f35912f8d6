"""Block sync over request/response streams on `/gridnode/sync/1.0.0`.

Gossip may drop blocks, so completeness rests here. A peer can ask for our
canonical hashes by range (`HashesRequest`, with a stride) and for encoded
canonical blocks by range (`BlocksRequest`, at most 128 blocks or 4 MiB).

A sync round with one peer:
1. find the highest block we share: compare the peer's canonical hashes with ours
   (`ChainPort.canonical_hash`) over the last 128 heights, then, if the fork is
   deeper, narrow down with strided samples (each request cuts the range 128-fold);
2. download blocks from just above it while importing the previous response, and
   hand them to the port in order: the port does validation and fork choice, so a
   heavier fork simply becomes our head. Every answer must hold the blocks asked
   for, numbered from the request's start; anything else is malformed.

A round is bounded (SYNC_ROUND_MAX_BLOCKS, SYNC_ROUND_SECONDS) and then judged
against the peer's claim: a peer that runs out of blocks, or fills a whole round
with blocks we had, before our head reaches the weight it claimed is penalised;
any peer whose round brought nothing new is passed over for SYNC_BACKOFF_SECONDS,
so one lying peer cannot keep us from the honest ones.

Rounds start when a peer's status shows more total weight than ours (initial
sync, catch-up after downtime), when it shows an equal-weight head we have not
fetched (so the port can apply its tie-break to both forks), and when a gossiped
block's parent is unknown (gap filling, from the peer that sent it). One round runs
at a time; `progress()` reports it for `eth_syncing`."""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import trio
from libp2p.abc import INetStream
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.basic_host import BasicHost
from libp2p.peer.id import ID

from node.p2p.bridge import AsyncPort, NodeLoopClosed, PortError
from node.p2p.config import P2PConfig
from node.p2p.peers import PeerTable
from node.p2p.port import ChainStatus, Outcome
from node.p2p.wire import (
    MAX_BLOCKS_PER_RESPONSE,
    MAX_HASHES_PER_RESPONSE,
    MAX_SYNC_REQUEST_FRAME,
    MAX_SYNC_RESPONSE_FRAME,
    SYNC_PROTOCOL,
    BlocksRequest,
    HashesRequest,
    RemoteError,
    SyncRequest,
    WireError,
    close_stream,
    decode_items,
    decode_request,
    encode_error,
    encode_items,
    encode_request,
    read_frame,
    write_frame,
)
from vm.limits import MAX_BLOCKS_RESPONSE_BYTES

log = logging.getLogger("gridnode.p2p")

RECENT_WINDOW = 128
"""Heights compared in the first ancestor request: forks are usually shallow."""
REPORT_SYNCING_BEHIND = 3
"""Rounds that start this many blocks behind show in `progress()` (eth_syncing); being a
block or two behind for a moment is normal at one block a second and is not "syncing"."""
RETRY_AFTER = 10.0
"""Seconds before a peer at the same head is tried again after a round with it."""
SYNC_ROUND_MAX_BLOCKS = 8192
"""Blocks (new or known) one round may take from its peer: 64 full answers. A round still
bringing new blocks continues at once in the next; the bound caps what a peer resending blocks
we have can make us check, and lets a gap fill or a better peer be chosen in between."""
SYNC_ROUND_SECONDS = 60.0
"""Wall time one round may take; every request within it has its own `request_timeout`.
geth's downloader has no round, but drops a peer that stalls or times out (errStallingPeer,
errTimeout); here the round ends and `_judge` decides."""
SYNC_BACKOFF_SECONDS = 30.0
"""How long `_choose` passes over a peer whose round brought nothing new, whatever head it
claims next, so honest peers are used meanwhile."""
AHEAD_BACKOFF_SECONDS = 2.0
"""The first pass-over after a round that ended on a block stamped ahead of our clock. That is our
clock's fault as often as the peer's: a node whose clock was put right must catch up at once,
not in SYNC_BACKOFF_SECONDS (a 30-minute soak saw a node 30 s behind after its clock was fixed),
and asking again costs one small request."""
FALSE_CLAIM_PENALTY = 15.0
"""Penalty for a round that ended short of the weight the peer claimed (geth drops such a peer:
"peer is stalling"). With a 60 s half-life and the 30 s back-off, the third such round in a row
reaches the ban threshold of 30."""


class SyncServer:
    """Answers other nodes' sync requests from our canonical chain."""

    def __init__(self, port: AsyncPort, peers: PeerTable, config: P2PConfig,
                 penalize: Callable[[str, float, str], None]) -> None:
        self._port = port
        self._peers = peers
        self._config = config
        self._penalize = penalize

    async def handle(self, stream: INetStream) -> None:
        peer_id = str(stream.muxed_conn.peer_id)
        try:
            with trio.fail_after(self._config.request_timeout):
                await write_frame(stream, await self._answer(peer_id, stream))
        except trio.TooSlowError:
            log.debug("sync request from %s timed out", peer_id)
        except BaseLibp2pError as exc:
            log.debug("sync request from %s failed: %s", peer_id, exc)
        except PortError as exc:
            log.debug("sync request from %s not answered: %s", peer_id, exc)
        finally:
            await close_stream(stream)

    async def _answer(self, peer_id: str, stream: INetStream) -> bytes:
        # A peer may ask as soon as *it* has counted us, possibly before our own
        # handshake with it has finished; what matters is that its key is admitted.
        if not self._peers.is_counted(peer_id) and not await self._port.is_admitted(peer_id):
            return encode_error("node key not admitted")
        try:
            request = decode_request(await read_frame(stream, MAX_SYNC_REQUEST_FRAME))
        except WireError as exc:
            log.info("refused a malformed sync request from %s: %s", peer_id, exc)
            self._penalize(peer_id, self._config.penalty_invalid_transaction, f"malformed sync request: {exc}")
            return encode_error(f"malformed request: {exc}")
        head = (await self._port.status()).head_number
        if isinstance(request, HashesRequest):
            numbers = [request.start + index * request.step for index in range(request.count)]
            hashes = await self._port.canonical_hashes([number for number in numbers if number <= head])
            return encode_items(_until_missing(hashes))
        if request.start > head:
            return encode_items([])
        blocks = await self._port.blocks(request.start, request.count)
        kept, size = [], 0
        for block in blocks:
            if size + len(block) > MAX_BLOCKS_RESPONSE_BYTES:
                break
            kept.append(block)
            size += len(block)
        if not kept:  # the port stops before a block that would not fit, so none did
            return encode_error(f"block {request.start} exceeds the {MAX_BLOCKS_RESPONSE_BYTES}-byte response limit")
        return encode_items(kept)


class SyncClient:
    """Our side of the sync protocol: one request, one answer, one stream."""

    def __init__(self, host: BasicHost, config: P2PConfig) -> None:
        self._host = host
        self._config = config

    async def hashes(self, peer_id: str, start: int, count: int, step: int = 1) -> list[bytes]:
        return await self._request(peer_id, HashesRequest(start, count, step), MAX_HASHES_PER_RESPONSE)

    async def blocks(self, peer_id: str, start: int, count: int) -> list[bytes]:
        return await self._request(peer_id, BlocksRequest(start, count), MAX_BLOCKS_PER_RESPONSE)

    async def _request(self, peer_id: str, request: SyncRequest, max_items: int) -> list[bytes]:
        with trio.fail_after(self._config.request_timeout):
            stream = await self._host.new_stream(ID.from_base58(peer_id), [SYNC_PROTOCOL])
            try:
                await write_frame(stream, encode_request(request))
                answer = await read_frame(stream, MAX_SYNC_RESPONSE_FRAME)
            finally:
                await close_stream(stream)
        return decode_items(answer, max_items)


@dataclass
class _Target:
    peer_id: str
    status: ChainStatus
    highest: int


class _RoundEnd(Enum):
    EXHAUSTED = "exhausted"
    """The peer answered with no blocks: it has given all it has."""
    BUDGET = "budget"
    """The round used its SYNC_ROUND_MAX_BLOCKS or SYNC_ROUND_SECONDS."""
    STOPPED = "stopped"
    """An answer could not be used (invalid, out of order, not connecting, refused, failed)."""


class Synchronizer:
    def __init__(self, client: SyncClient, port: AsyncPort, peers: PeerTable, config: P2PConfig,
                 penalize: Callable[[str, float, str], None]) -> None:
        self._client = client
        self._port = port
        self._peers = peers
        self._config = config
        self._penalize = penalize
        self._wake = trio.Event()
        self._gap_fills: dict[str, int] = {}
        self._tried: dict[tuple[str, bytes], float] = {}
        self._backoff: dict[str, float] = {}
        """Peers passed over until the given time: their last round made no progress or proved
        their claim false. Keyed by peer, since a liar can name a new head in every status."""
        self._ahead_rounds: dict[str, int] = {}
        """Rounds in a row that ended on a peer's block stamped ahead of our clock with nothing new:
        each doubles the next pass-over from AHEAD_BACKOFF_SECONDS up to SYNC_BACKOFF_SECONDS, so
        a peer that only serves blocks from the future (a header costs nothing to forge: the time is
        checked before the seal) is asked again quickly once, then no more often than any other."""
        self._progress: tuple[int, int, int] | None = None
        self._progress_lock = threading.Lock()

    # -- what starts a round (trio thread) ---------------------------------------
    def wake(self) -> None:
        """A peer told us its status: look again for a peer with blocks we lack."""
        self._wake.set()

    def request_gap_fill(self, peer_id: str, number: int | None) -> None:
        """`peer_id` gossiped block `number`, whose parent we lack."""
        self._gap_fills[peer_id] = max(number or 0, self._gap_fills.get(peer_id, 0))
        self._wake.set()

    # -- progress (any thread) -----------------------------------------------------
    def progress(self) -> tuple[int, int, int] | None:
        """(starting block, current block, highest block) while syncing, else None."""
        with self._progress_lock:
            return self._progress

    def stopped(self) -> None:
        self._set_progress(None)

    def _set_progress(self, progress: tuple[int, int, int] | None) -> None:
        with self._progress_lock:
            self._progress = progress

    # -- the worker --------------------------------------------------------------
    async def run(self) -> None:
        while True:
            try:
                target = await self._choose()
            except NodeLoopClosed:
                return
            except PortError as exc:
                log.warning("sync paused until new peer status: %s", exc)
                target = None
            if target is None:
                self._set_progress(None)
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            await self._round(target)

    async def _choose(self) -> _Target | None:
        ours = await self._port.status()
        now = time.monotonic()
        self._tried = {key: until for key, until in self._tried.items() if until > now}
        self._backoff = {peer_id: until for peer_id, until in self._backoff.items() if until > now}
        self._ahead_rounds = {p: n for p, n in self._ahead_rounds.items() if self._peers.is_counted(p)}
        best: tuple[tuple[int, int], _Target] | None = None
        for peer in self._peers.counted():
            status = peer.status
            if status is None or peer.peer_id in self._backoff:
                continue
            gap = self._gap_fills.get(peer.peer_id)
            if gap is None and (peer.peer_id, status.head_hash) in self._tried:
                continue
            if gap is not None:
                rank = 2
            elif status.total_weight > ours.total_weight:
                rank = 1
            elif status.total_weight == ours.total_weight and status.head_hash != ours.head_hash:
                rank = 0
            else:
                continue
            candidate = (rank, status.total_weight)
            if best is None or candidate > best[0]:
                best = (candidate, _Target(peer.peer_id, status, max(status.head_number, gap or 0)))
        for peer_id in [peer_id for peer_id in self._gap_fills if not self._peers.is_counted(peer_id)]:
            del self._gap_fills[peer_id]
        return None if best is None else best[1]

    async def _round(self, target: _Target) -> None:
        peer_id = target.peer_id
        self._gap_fills.pop(peer_id, None)
        retry_after = max(RETRY_AFTER, 3 * self._config.status_interval)
        self._tried[(peer_id, target.status.head_hash)] = time.monotonic() + retry_after
        started = time.monotonic()
        try:
            ours = await self._port.status()
            progress = _RoundProgress(ours.head_number, ours.head_number, max(target.highest, ours.head_number),
                                      reported=target.highest - ours.head_number >= REPORT_SYNCING_BEHIND)
            if progress.reported:
                self._set_progress(progress.as_tuple())
            end, reason = await self._exchange(target, ours.head_number, progress)
            after = await self._port.status()
        except PortError as exc:
            log.info("sync from %s failed on our side: %s", peer_id, exc)
            return
        self._judge(target, after, progress, end, reason, time.monotonic() - started)

    async def _exchange(self, target: _Target, our_head: int, progress: _RoundProgress) -> tuple[_RoundEnd, str]:
        """Find the common ancestor and fetch above it, within the round's time budget;
        how the round ended, and why. Failures of the peer end it; ours (PortError) propagate."""
        peer_id = target.peer_id
        try:
            with trio.move_on_after(SYNC_ROUND_SECONDS):
                progress.ancestor = await self._common_ancestor(peer_id, our_head, target.highest)
                return await self._download_and_import(peer_id, progress.ancestor + 1, progress)
            return _RoundEnd.BUDGET, f"the round's {SYNC_ROUND_SECONDS:g}s ran out"
        except (trio.TooSlowError, RemoteError, BaseLibp2pError) as exc:
            return _RoundEnd.STOPPED, f"request failed: {exc or type(exc).__name__}"
        except WireError as exc:
            self._penalize(peer_id, self._config.penalty_invalid_block, f"malformed sync answer: {exc}")
            return _RoundEnd.STOPPED, f"malformed answer: {exc}"

    def _judge(self, target: _Target, after: ChainStatus, progress: _RoundProgress, end: _RoundEnd, reason: str,
               elapsed: float) -> None:
        """Hold the round against the peer's claim. Reaching the claimed weight is success; a
        round cut by its budget while still bringing new blocks carries on at once; a peer that
        gave all it had, or a whole round of blocks we had, short of its claim lied: it is
        penalised. Any round without a new block passes the peer over for SYNC_BACKOFF_SECONDS."""
        peer_id, claimed = target.peer_id, target.status
        if progress.accepted or not progress.ahead:
            self._ahead_rounds.pop(peer_id, None)
        if after.total_weight >= claimed.total_weight:
            if progress.accepted:
                level = logging.INFO if progress.accepted >= REPORT_SYNCING_BEHIND else logging.DEBUG
                log.log(level, "synced %d blocks from %s (common ancestor %d) in %.2fs, %.0f blocks/s",
                        progress.accepted, peer_id, progress.ancestor, elapsed, progress.accepted / max(elapsed, 1e-6))
            return
        if end is _RoundEnd.BUDGET and progress.accepted:
            self._tried.pop((peer_id, claimed.head_hash), None)  # the next round continues with this peer
            log.info("synced %d blocks from %s (now at block %d; %s, continuing) in %.2fs, %.0f blocks/s",
                     progress.accepted, peer_id, after.head_number, reason, elapsed,
                     progress.accepted / max(elapsed, 1e-6))
            return
        if end is _RoundEnd.EXHAUSTED or (end is _RoundEnd.BUDGET and progress.delivered):
            self._penalize(peer_id, FALSE_CLAIM_PENALTY,
                           f"claimed weight {claimed.total_weight} at block {claimed.head_number}, but {reason} "
                           f"with our head at block {after.head_number}, weight {after.total_weight}")
        elif progress.accepted:
            log.info("sync from %s stopped after %d new blocks: %s", peer_id, progress.accepted, reason)
            return
        backoff = SYNC_BACKOFF_SECONDS
        if progress.ahead:
            rounds = self._ahead_rounds[peer_id] = self._ahead_rounds.get(peer_id, 0) + 1
            backoff = min(AHEAD_BACKOFF_SECONDS * 2 ** (rounds - 1), SYNC_BACKOFF_SECONDS)
        self._backoff[peer_id] = time.monotonic() + backoff
        log.info("sync from %s stopped: %s; other peers first for %gs", peer_id, reason, backoff)

    async def _common_ancestor(self, peer_id: str, our_head: int, their_head: int) -> int:
        """The highest height where the peer's canonical hash equals ours. Hashes chain,
        so every height below a match matches too: first the recent window, then a
        search that keeps `low` matching and `high` not, sampling 128 heights per request."""
        top = min(our_head, their_head)
        start = max(0, top - RECENT_WINDOW + 1)
        match = await self._highest_match(peer_id, start, top - start + 1, 1)
        if match is not None:
            return match
        low, high = 0, start  # genesis is shared (the handshake checked it); `start` is not
        while high - low > 1:
            step = math.ceil((high - low) / RECENT_WINDOW)
            count = (high - 1 - low) // step
            match = await self._highest_match(peer_id, low + step, count, step)
            if match is None:
                high = low + step
            else:
                low, high = match, min(high, match + step)
        return low

    async def _highest_match(self, peer_id: str, start: int, count: int, step: int) -> int | None:
        theirs = await self._client.hashes(peer_id, start, count, step)
        numbers = [start + index * step for index in range(len(theirs))]
        ours = await self._port.canonical_hashes(numbers)
        matches = [number for number, mine, their in zip(numbers, ours, theirs, strict=True) if mine == their]
        return max(matches) if matches else None

    async def _download_and_import(self, peer_id: str, start: int, progress: _RoundProgress) -> tuple[_RoundEnd, str]:
        """Fetch from `start` until the peer has no more or the round's block budget is spent,
        importing each answer while the next is on its way."""
        send, receive = trio.open_memory_channel[tuple[int, list[bytes]]](2)
        download_errors: list[Exception] = []
        end = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._download, peer_id, start, send, download_errors)
            async with receive:
                async for first, blocks in receive:
                    stop_reason = await self._import(peer_id, first, blocks, progress)
                    if stop_reason is not None:
                        end = _RoundEnd.STOPPED, stop_reason
                    elif progress.delivered >= SYNC_ROUND_MAX_BLOCKS:
                        end = _RoundEnd.BUDGET, f"the round's {SYNC_ROUND_MAX_BLOCKS} blocks are used"
                    if end is not None:
                        nursery.cancel_scope.cancel()
                        break
        if end is not None:
            return end
        if download_errors:
            raise download_errors[0]
        return _RoundEnd.EXHAUSTED, f"it had no block {start + progress.delivered}"

    async def _import(self, peer_id: str, first: int, blocks: list[bytes], progress: _RoundProgress) -> str | None:
        """Hand one answer (blocks `first`, `first`+1, …) to the port in batches; the reason
        to stop, or None. A block out of that order is a malformed answer: it would let a peer
        resend what we have forever."""
        batch = self._config.sync_import_batch
        expected = first
        for offset in range(0, len(blocks), batch):
            try:
                results = await self._port.import_blocks(blocks[offset:offset + batch])
            except PortError as exc:
                return str(exc)
            for result in results:
                if result.outcome is Outcome.INVALID:
                    self._penalize(peer_id, self._config.penalty_invalid_block, f"invalid block in sync: {result.reason}")
                    return f"invalid block {result.number}: {result.reason}"
                if result.number != expected:
                    self._penalize(peer_id, self._config.penalty_invalid_block,
                                   f"sync answer out of order: block {result.number} where {expected} was due")
                    return f"it sent block {result.number} where {expected} was due"
                expected += 1
                if result.outcome is Outcome.UNKNOWN_PARENT:
                    return f"block {result.number} does not connect to our chain (did the peer reorganise?)"
                if result.outcome is Outcome.IGNORED:
                    progress.ahead = result.ahead
                    return f"block {result.number} not kept: {result.reason}"
                if result.outcome is Outcome.ACCEPTED:
                    progress.accepted += 1
                progress.current = max(progress.current, result.number)
            progress.delivered += len(results)
            progress.highest = max(progress.highest, progress.current)
            if progress.reported:
                self._set_progress(progress.as_tuple())
        return None

    async def _download(self, peer_id: str, start: int, send: trio.MemorySendChannel[tuple[int, list[bytes]]],
                        errors: list[Exception]) -> None:
        async with send:
            number = start
            while number - start < SYNC_ROUND_MAX_BLOCKS:
                count = min(self._config.sync_blocks_per_request, SYNC_ROUND_MAX_BLOCKS - (number - start))
                try:
                    blocks = await self._client.blocks(peer_id, number, count)
                    if len(blocks) > count:
                        raise WireError(f"{len(blocks)} blocks in answer to a request for {count}")
                except (trio.TooSlowError, RemoteError, WireError, BaseLibp2pError) as exc:
                    errors.append(exc)
                    return
                if not blocks:
                    return
                await send.send((number, blocks))
                number += len(blocks)


@dataclass
class _RoundProgress:
    starting: int
    current: int
    highest: int
    reported: bool
    """Whether `progress()` shows this round (not for a block or two of catching up)."""
    ancestor: int = 0
    delivered: int = 0
    """Blocks the peer sent in order this round, new or known."""
    accepted: int = 0
    """Of those, blocks new to us."""
    ahead: bool = False
    """The round ended on a block stamped ahead of our clock."""

    def as_tuple(self) -> tuple[int, int, int]:
        return self.starting, self.current, self.highest


def _until_missing(hashes: list[bytes | None]) -> list[bytes]:
    present = []
    for block_hash in hashes:
        if block_hash is None:
            break
        present.append(block_hash)
    return present
