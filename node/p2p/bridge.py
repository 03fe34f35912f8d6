"""The one bridge between the node's asyncio loop and the network's trio loop.

Two event loops run in one process:

* the **asyncio loop** on the main thread owns the chain, mempool and RPC
  (aiohttp). The chain objects are plain, synchronous and not thread-safe, so
  every call on them must run *on that loop's thread*;
* the **trio loop** on the `gridnode-p2p` thread runs py-libp2p (host, gossipsub,
  status and sync streams).

Neither loop ever blocks waiting for the other. All traffic crosses here:

trio → asyncio (`Bridge.call`, and `AsyncPort` built on it)
    The call is scheduled on the asyncio thread with `loop.call_soon_threadsafe`;
    its result lands in a `concurrent.futures.Future` whose done-callback wakes the
    waiting trio task through the trio token (`TrioToken.run_sync_soon`). The trio
    task sleeps on a `trio.Event`, so the trio loop keeps serving other peers, and a
    cancelled wait (timeout, shutdown) cancels the call if it has not started.

asyncio (or any thread) → trio (`Bridge.run_sync`, `Bridge.submit`)
    `run_sync` runs a short synchronous function on the trio thread and returns its
    value (`trio.from_thread.run_sync` with the token): used for state changes that
    answer at once (add/remove a peer). `submit` hands a function to the trio
    thread without waiting (`TrioToken.run_sync_soon`): used to publish blocks and
    transactions, so the chain never waits on the network.

Reads that need no answer from trio (peer list, sync progress) do not cross at all:
the network publishes immutable snapshots under a lock (see `peers.PeerTable`)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from node.p2p.port import ChainPort, ChainStatus, ImportResult, Outcome

T = TypeVar("T")

log = logging.getLogger("gridnode.p2p")


class NetworkStopped(RuntimeError):
    """The trio side is not running (not started yet, or stopped)."""


class PortError(RuntimeError):
    """The node could not answer a port call: the call raised (logged with its
    traceback where it happened), or the node's loop is gone. Network code treats
    it like any failed exchange with a peer: give up on that exchange, carry on."""


class NodeLoopClosed(PortError):
    """The node's asyncio loop is closed; the port can no longer be reached."""


class Bridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._token: trio.lowlevel.TrioToken | None = None
        self._trio_thread: int | None = None

    # -- lifetime (called on the trio thread) ---------------------------------
    def attach(self) -> None:
        """Remember the running trio loop; call first thing inside `trio.run`."""
        self._token = trio.lowlevel.current_trio_token()
        self._trio_thread = threading.get_ident()

    def detach(self) -> None:
        self._token = None

    @property
    def attached(self) -> bool:
        return self._token is not None

    # -- trio → asyncio --------------------------------------------------------
    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on the asyncio loop thread and return its result (or raise
        its exception) here, without blocking the trio loop."""
        token = self._require_token()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        finished = trio.Event()

        def run_on_loop() -> None:
            if not future.set_running_or_notify_cancel():
                return  # the trio side gave up before the call started
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting trio task, which re-raises it
                future.set_exception(exc)

        def wake_trio(_: concurrent.futures.Future[T]) -> None:
            try:
                token.run_sync_soon(finished.set)
            except trio.RunFinishedError:
                return  # the network stopped meanwhile; nobody is waiting

        future.add_done_callback(wake_trio)
        try:
            self._loop.call_soon_threadsafe(run_on_loop)
        except RuntimeError as exc:
            raise NodeLoopClosed("the node's event loop is closed") from exc
        try:
            await finished.wait()
        except BaseException:
            future.cancel()
            raise
        return future.result()

    # -- asyncio / any thread → trio ------------------------------------------
    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """Run the quick synchronous `fn(*args)` on the trio thread and return its value."""
        token = self._require_token()
        if threading.get_ident() == self._trio_thread:
            return fn(*args)
        try:
            return trio.from_thread.run_sync(fn, *args, trio_token=token)
        except trio.RunFinishedError as exc:
            raise NetworkStopped("the network is not running") from exc

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        """Queue `fn(*args)` to run on the trio thread; returns at once. `fn` must not
        raise (an exception there would abort the trio loop)."""
        token = self._require_token()
        try:
            token.run_sync_soon(fn, *args)
        except trio.RunFinishedError as exc:
            raise NetworkStopped("the network is not running") from exc

    def _require_token(self) -> trio.lowlevel.TrioToken:
        token = self._token
        if token is None:
            raise NetworkStopped("the network is not running")
        return token


class AsyncPort:
    """The node's `ChainPort` as the trio side uses it: every method crosses the
    bridge once. Batch methods exist so that a sync round of many blocks costs a
    few crossings, not one per block, while keeping each crossing short enough not
    to stall the node's RPC."""

    def __init__(self, port: ChainPort, bridge: Bridge) -> None:
        self._port = port
        self._bridge = bridge

    async def status(self) -> ChainStatus:
        return await self._call(self._port.status)

    async def import_block(self, encoded_block: bytes) -> ImportResult:
        return await self._call(self._port.import_block, encoded_block)

    async def import_blocks(self, encoded_blocks: Sequence[bytes]) -> list[ImportResult]:
        """Import in order, stopping after the first block that is neither new nor known
        (its result is the last one returned). One fsync for the lot, at its last block; the
        good blocks before a bad one are synced by the next durable write (`Store.batch`)."""
        return await self._call(_import_in_order, self._port, tuple(encoded_blocks))

    async def add_transactions(self, raw_transactions: Sequence[bytes]) -> list[ImportResult]:
        return await self._call(_add_all, self._port, tuple(raw_transactions))

    async def blocks(self, start: int, count: int) -> list[bytes]:
        return await self._call(self._port.blocks, start, count)

    async def canonical_hashes(self, numbers: Sequence[int]) -> list[bytes | None]:
        return await self._call(_canonical_hashes, self._port, tuple(numbers))

    async def is_admitted(self, peer_id: str) -> bool:
        return await self._call(self._port.is_admitted, peer_id)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        try:
            return await self._bridge.call(fn, *args)
        except PortError:
            raise
        except Exception as exc:
            name = getattr(fn, "__name__", repr(fn))
            log.error("the node raised in %s", name, exc_info=exc)
            raise PortError(f"the node raised in {name}: {exc!r}") from exc


def _import_in_order(port: ChainPort, encoded_blocks: tuple[bytes, ...]) -> list[ImportResult]:
    results = []
    for k, encoded in enumerate(encoded_blocks):
        result = port.import_block(encoded, durable=k == len(encoded_blocks) - 1)
        results.append(result)
        if result.outcome not in (Outcome.ACCEPTED, Outcome.KNOWN):
            break
    return results


def _add_all(port: ChainPort, raw_transactions: tuple[bytes, ...]) -> list[ImportResult]:
    return [port.add_transaction(raw) for raw in raw_transactions]


def _canonical_hashes(port: ChainPort, numbers: tuple[int, ...]) -> list[bytes | None]:
    return [port.canonical_hash(number) for number in numbers]
