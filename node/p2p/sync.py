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
   heavier fork simply becomes our head.

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
    MAX_BLOCKS_RESPONSE_BYTES,
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

log = logging.getLogger("gridnode.p2p")

RECENT_WINDOW = 128
"""Heights compared in the first ancestor request: forks are usually shallow."""
REPORT_SYNCING_BEHIND = 3
"""Rounds that start this many blocks behind show in `progress()` (eth_syncing); being a
block or two behind for a moment is normal at one block a second and is not "syncing"."""
RETRY_AFTER = 10.0
"""Seconds before a peer at the same head is tried again after a round with it."""


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
        if blocks and not kept:
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


class _RoundFailed(Exception):
    """A sync round stopped early; the message says why."""


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
        best: tuple[tuple[int, int], _Target] | None = None
        for peer in self._peers.counted():
            status = peer.status
            if status is None:
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
            ancestor = await self._common_ancestor(peer_id, ours.head_number, target.highest)
            accepted = await self._download_and_import(peer_id, ancestor + 1, progress)
        except _RoundFailed as exc:
            log.info("sync from %s stopped: %s", peer_id, exc)
            return
        except (trio.TooSlowError, RemoteError, BaseLibp2pError, PortError) as exc:
            log.info("sync from %s failed: %s", peer_id, exc or type(exc).__name__)
            return
        except WireError as exc:
            self._penalize(peer_id, self._config.penalty_invalid_block, f"malformed sync answer: {exc}")
            return
        if accepted:
            elapsed = time.monotonic() - started
            level = logging.INFO if accepted >= REPORT_SYNCING_BEHIND else logging.DEBUG
            log.log(level, "synced %d blocks from %s (common ancestor %d) in %.2fs, %.0f blocks/s", accepted,
                    peer_id, ancestor, elapsed, accepted / max(elapsed, 1e-6))

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

    async def _download_and_import(self, peer_id: str, start: int, progress: _RoundProgress) -> int:
        """Fetch from `start` until the peer has no more, importing each answer while
        the next is on its way. Returns how many blocks were new to us."""
        send, receive = trio.open_memory_channel[list[bytes]](2)
        download_errors: list[Exception] = []
        stop_reason = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._download, peer_id, start, send, download_errors)
            async with receive:
                async for blocks in receive:
                    stop_reason = await self._import(peer_id, blocks, progress)
                    if stop_reason is not None:
                        nursery.cancel_scope.cancel()
                        break
        if stop_reason is not None:
            raise _RoundFailed(stop_reason)
        if download_errors:
            raise download_errors[0]
        return progress.accepted

    async def _import(self, peer_id: str, blocks: list[bytes], progress: _RoundProgress) -> str | None:
        """Hand one answer to the port in batches; the reason to stop, or None."""
        batch = self._config.sync_import_batch
        for offset in range(0, len(blocks), batch):
            try:
                results = await self._port.import_blocks(blocks[offset:offset + batch])
            except PortError as exc:
                return str(exc)
            for result in results:
                if result.outcome is Outcome.INVALID:
                    self._penalize(peer_id, self._config.penalty_invalid_block, f"invalid block in sync: {result.reason}")
                    return f"invalid block {result.number}: {result.reason}"
                if result.outcome is Outcome.UNKNOWN_PARENT:
                    return f"block {result.number} does not connect to our chain (did the peer reorganise?)"
                if result.outcome is Outcome.ACCEPTED:
                    progress.accepted += 1
                if result.number is not None:
                    progress.current = max(progress.current, result.number)
            progress.highest = max(progress.highest, progress.current)
            if progress.reported:
                self._set_progress(progress.as_tuple())
        return None

    async def _download(self, peer_id: str, start: int, send: trio.MemorySendChannel[list[bytes]],
                        errors: list[Exception]) -> None:
        async with send:
            number = start
            while True:
                try:
                    blocks = await self._client.blocks(peer_id, number, self._config.sync_blocks_per_request)
                except (trio.TooSlowError, RemoteError, WireError, BaseLibp2pError) as exc:
                    errors.append(exc)
                    return
                if not blocks:
                    return
                await send.send(blocks)
                number += len(blocks)


@dataclass
class _RoundProgress:
    starting: int
    current: int
    highest: int
    reported: bool
    """Whether `progress()` shows this round (not for a block or two of catching up)."""
    accepted: int = 0

    def as_tuple(self) -> tuple[int, int, int]:
        return self.starting, self.current, self.highest


def _until_missing(hashes: list[bytes | None]) -> list[bytes]:
    present = []
    for block_hash in hashes:
        if block_hash is None:
            break
        present.append(block_hash)
    return present
