"""Federated learning's weights between nodes, on `/gridnode/models/1.0.0`.

The chain keeps only the hashes of the EVs' updates and of the mLAG's aggregate (PoSOC); anyone
checking an aggregate needs the bytes. One request, one answer, one stream, framed like sync
(`wire.read_frame`: a varint-prefixed msgpack frame whose length is checked before its body is read):

    request   the model's keccak hash (32 bytes, msgpack bin)         at most MAX_MODEL_REQUEST_FRAME
    answer    ["ok", model bytes] or ["missing"]                      at most MAX_MODEL_RESPONSE_FRAME

Serving reads the node's model store (`node.models.ModelStore`, files, safe from any thread)
directly on the network's thread, so it never waits on the node's loop. A fetch asks the
connected peers in turn, each under `request_timeout` and all of them under one deadline, and keeps
the first answer whose keccak is the hash asked for: a peer that sends other bytes is penalised
and the next one asked. Only counted (admitted, handshaken) peers are asked or answered."""
from __future__ import annotations

import concurrent.futures
import logging
import math
from collections.abc import Callable

import msgpack
import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.basic_host import BasicHost
from libp2p.peer.id import ID

from consensus.posoc.engine import MAX_MODEL_BYTES
from node.p2p.bridge import Bridge, NetworkStopped
from node.p2p.config import P2PConfig
from node.p2p.peers import PeerTable
from node.p2p.wire import WireError, close_stream, read_frame, write_frame
from vm.crypto import keccak256

log = logging.getLogger("gridnode.p2p")

MODELS_PROTOCOL = TProtocol("/gridnode/models/1.0.0")
MAX_MODEL_REQUEST_FRAME = 64
MAX_MODEL_RESPONSE_FRAME = MAX_MODEL_BYTES + 16
"""A model at its bound plus msgpack's headers on the answer, "ok" and the bytes."""
MAX_PEERS_ASKED = 8
"""Peers one fetch asks at most, in turn."""

ModelLookup = Callable[[bytes], "bytes | None"]


def encode_model_request(model_hash: bytes) -> bytes:
    return msgpack.packb(model_hash, use_bin_type=True)


def decode_model_request(payload: bytes) -> bytes:
    value = _unpack(payload)
    if not isinstance(value, bytes) or len(value) != 32:
        raise WireError("model request: expected a 32-byte hash")
    return value


def encode_model_answer(blob: bytes | None) -> bytes:
    return msgpack.packb(["missing"] if blob is None else ["ok", blob], use_bin_type=True)


def decode_model_answer(payload: bytes) -> bytes | None:
    """The model bytes of an "ok" answer, None for "missing"; WireError for anything else."""
    value = _unpack(payload)
    if value == ["missing"]:
        return None
    if isinstance(value, list) and len(value) == 2 and value[0] == "ok" and isinstance(value[1], bytes) \
            and 0 < len(value[1]) <= MAX_MODEL_BYTES:
        return value[1]
    raise WireError(f'model answer: expected ["ok", 1..{MAX_MODEL_BYTES} bytes] or ["missing"]')


class ModelExchange:
    def __init__(self, host: BasicHost, bridge: Bridge, lookup: ModelLookup | None, peers: PeerTable,
                 config: P2PConfig, penalize: Callable[[str, float, str], None]) -> None:
        """`lookup` is called on the network's thread (the store is thread-safe); None serves nothing."""
        self._host = host
        self._bridge = bridge
        self._lookup = lookup
        self._peers = peers
        self._config = config
        self._penalize = penalize

    # -- serving -----------------------------------------------------------------
    async def handle(self, stream: INetStream) -> None:
        peer_id = str(stream.muxed_conn.peer_id)
        try:
            with trio.fail_after(self._config.request_timeout):
                if not self._peers.is_counted(peer_id):
                    await write_frame(stream, encode_model_answer(None))  # not (yet) a counted peer: serve it nothing
                    return
                try:
                    model_hash = decode_model_request(await read_frame(stream, MAX_MODEL_REQUEST_FRAME))
                except WireError as exc:
                    self._penalize(peer_id, self._config.penalty_invalid_transaction, f"malformed model request: {exc}")
                    return
                blob = self._lookup(model_hash) if self._lookup is not None else None
                await write_frame(stream, encode_model_answer(blob))
        except trio.TooSlowError:
            log.debug("model request from %s timed out", peer_id)
        except BaseLibp2pError as exc:
            log.debug("model request from %s failed: %s", peer_id, exc)
        finally:
            await close_stream(stream)

    # -- fetching ----------------------------------------------------------------
    async def ask(self, peer_id: str, model_hash: bytes) -> bytes | None:
        """One peer's answer, checked: the bytes if they hash to `model_hash`, else None (and a
        peer that sent other bytes is penalised). Network errors and timeouts give None too."""
        try:
            with trio.fail_after(self._config.request_timeout):
                stream = await self._host.new_stream(ID.from_base58(peer_id), [MODELS_PROTOCOL])
                try:
                    await write_frame(stream, encode_model_request(model_hash))
                    blob = decode_model_answer(await read_frame(stream, MAX_MODEL_RESPONSE_FRAME))
                finally:
                    await close_stream(stream)
        except WireError as exc:
            self._penalize(peer_id, self._config.penalty_invalid_transaction, f"malformed model answer: {exc}")
            return None
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, BaseLibp2pError, OSError) as exc:
            log.debug("model request to %s failed: %r", peer_id, exc)
            return None
        if blob is not None and keccak256(blob) != model_hash:
            self._penalize(peer_id, self._config.penalty_invalid_transaction, "served a model that is not the one asked for")
            log.info("peer %s served other bytes for model 0x%s: dropped", peer_id, model_hash.hex())
            return None
        return blob

    async def fetch(self, model_hash: bytes, deadline: float) -> bytes | None:
        """Ask counted peers in turn until one serves the model, or `deadline` (trio clock) passes."""
        with trio.move_on_at(deadline):
            for peer in self._peers.counted()[:MAX_PEERS_ASKED]:
                blob = await self.ask(peer.peer_id, model_hash)
                if blob is not None:
                    return blob
        return None

    async def fetch_many(self, hashes: list[bytes], seconds: float) -> dict[bytes, bytes]:
        """Fetch several models at once under one deadline; those found, by hash."""
        found: dict[bytes, bytes] = {}
        deadline = trio.current_time() + seconds

        async def one(model_hash: bytes) -> None:
            blob = await self.fetch(model_hash, deadline)
            if blob is not None:
                found[model_hash] = blob

        async with trio.open_nursery() as nursery:
            for model_hash in dict.fromkeys(hashes):
                nursery.start_soon(one, model_hash)
        return found

    def fetch_many_future(self, hashes: list[bytes], seconds: float) -> concurrent.futures.Future:
        """From any thread: a future of `fetch_many`'s answer, run on the network's thread. It
        resolves to {} if the network is not running."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        if not hashes or not math.isfinite(seconds) or seconds <= 0:
            future.set_result({})
            return future

        async def run() -> None:
            try:
                future.set_result(await self.fetch_many(list(hashes), seconds))
            except Exception as exc:  # noqa: BLE001 - a system task must not raise: the fetch found nothing
                log.warning("model fetch failed: %r", exc)
                future.set_result({})
            except BaseException:  # cancelled: the network is stopping
                future.set_result({})
                raise

        def spawn() -> None:
            trio.lowlevel.spawn_system_task(run, name="model fetch")

        try:
            self._bridge.submit(spawn)
        except NetworkStopped:
            future.set_result({})
        return future


def _unpack(payload: bytes) -> object:
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, TypeError) as exc:
        raise WireError(f"not msgpack: {exc}") from exc
