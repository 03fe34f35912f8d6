"""What goes over the wire: protocol ids, topic names, message encodings, framing.

Every message on a gridnode stream is one varint-length-prefixed msgpack frame
(the framing libp2p uses everywhere). Every read has a size limit checked
*before* the body is read, and a deadline; decoders check types and ranges, so a
hostile peer gets a `WireError`, never an exception from deep inside msgpack."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import msgpack
import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.pubsub.rpc_queue import DefaultMaxMessageSize
from libp2p.utils import decode_uvarint_from_stream, encode_varint_prefixed

from node.p2p.port import ChainStatus
from vm.limits import GOSSIP_RPC_LIMIT, MAX_BLOCKS_RESPONSE_BYTES, MAX_GOSSIP_MESSAGE, MAX_TRANSACTION_SIZE

log = logging.getLogger("gridnode.p2p")

STATUS_PROTOCOL = TProtocol("/gridnode/status/1.0.0")
SYNC_PROTOCOL = TProtocol("/gridnode/sync/1.0.0")


def transaction_topic(chain_id: int) -> str:
    """Carries batches of raw signed transactions (see `encode_transaction_batch`)."""
    return f"/gridnode/{chain_id}/tx/1"


def block_topic(chain_id: int) -> str:
    """Carries one encoded block per message."""
    return f"/gridnode/{chain_id}/block/1"


MAX_TRANSACTIONS_PER_BATCH = 1000
"""Most transactions one gossip message may carry (a protocol limit, the same for every node)."""

MAX_STATUS_FRAME = 512
MAX_SYNC_REQUEST_FRAME = 256
MAX_BLOCKS_PER_RESPONSE = 128
MAX_HASHES_PER_RESPONSE = 1024

_MSGPACK_HEADER = 5
"""Most bytes msgpack puts before a bin, str or array (bin32 / str32 / array32)."""

MAX_SYNC_RESPONSE_FRAME = MAX_BLOCKS_RESPONSE_BYTES + (MAX_BLOCKS_PER_RESPONSE + 3) * _MSGPACK_HEADER
"""A blocks answer, ["ok", [block, …]]: the blocks' bytes (vm.limits) plus msgpack's header on
each block, on the answer and on its list, and on "ok". Every other answer is smaller."""

assert GOSSIP_RPC_LIMIT == DefaultMaxMessageSize, "vm.limits must follow py-libp2p's gossip RPC limit"
assert 2 * _MSGPACK_HEADER + MAX_TRANSACTION_SIZE <= MAX_GOSSIP_MESSAGE, \
    "a maximal transaction must fit alone in a gossip batch"
assert 2 * _MSGPACK_HEADER + MAX_HASHES_PER_RESPONSE * (_MSGPACK_HEADER + 32) <= MAX_SYNC_RESPONSE_FRAME, \
    "a full hashes answer must fit the response frame"

_STATUS_VERSION = 1
_UINT64 = 1 << 64
_MAX_WEIGHT_BYTES = 64


class WireError(ValueError):
    """A malformed or out-of-range message from a peer."""


class FrameTooLarge(WireError):
    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the {limit}-byte limit")
        self.length = length
        self.limit = limit


class RemoteError(Exception):
    """The peer answered a request with an error."""


# -- framing ------------------------------------------------------------------
async def write_frame(stream: INetStream, payload: bytes) -> None:
    await stream.write(encode_varint_prefixed(payload))


async def read_frame(stream: INetStream, limit: int) -> bytes:
    """One length-prefixed frame; the length is checked before the body is read.
    Callers wrap this in `trio.fail_after`."""
    length = await decode_uvarint_from_stream(stream)
    if length > limit:
        raise FrameTooLarge(length, limit)
    chunks = bytearray()
    while len(chunks) < length:
        chunk = await stream.read(length - len(chunks))
        if not chunk:
            raise WireError(f"stream ended after {len(chunks)} of {length} bytes")
        chunks += chunk
    return bytes(chunks)


# -- status ---------------------------------------------------------------------
def encode_status(status: ChainStatus) -> bytes:
    weight = status.total_weight.to_bytes((status.total_weight.bit_length() + 7) // 8, "big")
    return msgpack.packb([_STATUS_VERSION, status.chain_id, status.genesis_hash, status.head_number,
                          status.head_hash, weight], use_bin_type=True)


def decode_status(payload: bytes) -> ChainStatus:
    """Total weight travels as big-endian bytes: PoW's cumulative work outgrows msgpack's 64-bit ints."""
    fields = _unpack(payload)
    if not isinstance(fields, list) or len(fields) != 6:
        raise WireError("status: expected a list of 6 fields")
    version, chain_id, genesis_hash, head_number, head_hash, weight = fields
    if version != _STATUS_VERSION:
        raise WireError(f"status: unsupported version {version!r}")
    _require_uint(chain_id, "status chain id")
    _require_uint(head_number, "status head number")
    _require_hash(genesis_hash, "status genesis hash")
    _require_hash(head_hash, "status head hash")
    if not isinstance(weight, bytes) or len(weight) > _MAX_WEIGHT_BYTES:
        raise WireError("status: total weight must be at most 64 bytes")
    return ChainStatus(chain_id, genesis_hash, head_number, head_hash, int.from_bytes(weight, "big"))


# -- sync requests and responses -------------------------------------------------
@dataclass(frozen=True)
class HashesRequest:
    """Our canonical hashes at start, start+step, …: `count` of them, fewer past our head."""

    start: int
    count: int
    step: int = 1


@dataclass(frozen=True)
class BlocksRequest:
    """Encoded canonical blocks start … start+count-1, fewer past our head or the byte cap."""

    start: int
    count: int


SyncRequest = HashesRequest | BlocksRequest


def encode_request(request: SyncRequest) -> bytes:
    if isinstance(request, HashesRequest):
        fields = ["hashes", request.start, request.count, request.step]
    else:
        fields = ["blocks", request.start, request.count]
    return msgpack.packb(fields, use_bin_type=True)


def decode_request(payload: bytes) -> SyncRequest:
    fields = _unpack(payload)
    if not isinstance(fields, list) or not fields:
        raise WireError("request: expected a non-empty list")
    kind, *arguments = fields
    for argument in arguments:
        _require_uint(argument, "request argument")
    if kind == "hashes" and len(arguments) == 3:
        start, count, step = arguments
        if not 1 <= count <= MAX_HASHES_PER_RESPONSE:
            raise WireError(f"request: hash count must be 1..{MAX_HASHES_PER_RESPONSE}")
        if step < 1:
            raise WireError("request: step must be at least 1")
        return HashesRequest(start, count, step)
    if kind == "blocks" and len(arguments) == 2:
        start, count = arguments
        if not 1 <= count <= MAX_BLOCKS_PER_RESPONSE:
            raise WireError(f"request: block count must be 1..{MAX_BLOCKS_PER_RESPONSE}")
        return BlocksRequest(start, count)
    raise WireError(f"request: unknown request {kind!r} with {len(arguments)} arguments")


def encode_items(items: list[bytes]) -> bytes:
    return msgpack.packb(["ok", items], use_bin_type=True)


def encode_error(reason: str) -> bytes:
    return msgpack.packb(["error", reason[:200]], use_bin_type=True)


def decode_items(payload: bytes, max_items: int) -> list[bytes]:
    """The items of an "ok" answer; raises RemoteError for an "error" answer."""
    fields = _unpack(payload)
    if not isinstance(fields, list) or len(fields) != 2:
        raise WireError("response: expected [status, body]")
    kind, body = fields
    if kind == "error":
        raise RemoteError(str(body))
    if kind != "ok" or not isinstance(body, list) or len(body) > max_items:
        raise WireError(f"response: expected ok and at most {max_items} items")
    if not all(isinstance(item, bytes) for item in body):
        raise WireError("response: items must be bytes")
    return body


# -- transaction batches ---------------------------------------------------------
def encode_transaction_batch(raw_transactions: list[bytes]) -> bytes:
    """Transactions are gossiped in batches: one message for a burst instead of one per
    transaction keeps gossipsub's per-peer queue (32 RPCs in py-libp2p) from overflowing."""
    return msgpack.packb(raw_transactions, use_bin_type=True)


def decode_transaction_batch(payload: bytes) -> list[bytes]:
    if len(payload) > MAX_GOSSIP_MESSAGE:
        raise WireError(f"transaction batch of {len(payload)} bytes exceeds {MAX_GOSSIP_MESSAGE}")
    items = _unpack(payload)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_TRANSACTIONS_PER_BATCH:
        raise WireError(f"transaction batch: expected a list of 1..{MAX_TRANSACTIONS_PER_BATCH} transactions")
    if not all(isinstance(item, bytes) and 0 < len(item) <= MAX_TRANSACTION_SIZE for item in items):
        raise WireError(f"transaction batch: every transaction must be 1..{MAX_TRANSACTION_SIZE} bytes")
    return items


# -- helpers -------------------------------------------------------------------
def _unpack(payload: bytes) -> object:
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, TypeError) as exc:  # msgpack's errors are ValueErrors
        raise WireError(f"not msgpack: {exc}") from exc


def _require_uint(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _UINT64:
        raise WireError(f"{what} must be an unsigned 64-bit integer")


def _require_hash(value: object, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise WireError(f"{what} must be 32 bytes")


async def close_stream(stream: INetStream) -> None:
    """Close a stream at the end of an exchange, or reset it if the connection is gone.
    Shielded and bounded, so it also runs when the handler is being cancelled."""
    with trio.move_on_after(2) as scope:
        scope.shield = True
        try:
            await stream.close()
            return
        except BaseLibp2pError as exc:
            reason = exc
        try:
            await stream.reset()
        except BaseLibp2pError as exc:
            log.debug("could not close or reset a stream: %s; %s", reason, exc)
