"""Encodings on the wire: strict decoding of everything a peer sends."""
from __future__ import annotations

import msgpack
import pytest

from node.p2p.port import ChainStatus
from node.p2p.wire import (
    MAX_BLOCKS_PER_RESPONSE,
    MAX_SYNC_RESPONSE_FRAME,
    MAX_TRANSACTIONS_PER_BATCH,
    BlocksRequest,
    HashesRequest,
    RemoteError,
    WireError,
    block_topic,
    decode_items,
    decode_request,
    decode_status,
    decode_transaction_batch,
    encode_error,
    encode_items,
    encode_request,
    encode_status,
    encode_transaction_batch,
    transaction_topic,
)
from vm.limits import (
    MAX_BLOCK_BYTES,
    MAX_BLOCKS_RESPONSE_BYTES,
    MAX_GOSSIP_MESSAGE,
    MAX_TRANSACTION_SIZE,
    SYNC_RESPONSE_BLOCKS,
)


def test_status_round_trips_with_a_weight_beyond_64_bits():
    status = ChainStatus(1337, b"\x01" * 32, 5_000, b"\x02" * 32, 2**200 + 7)
    encoded = encode_status(status)
    assert len(encoded) < 200
    assert decode_status(encoded) == status


@pytest.mark.parametrize("fields", [
    [1, 1337, b"\x01" * 31, 0, b"\x02" * 32, b""],   # short genesis hash
    [2, 1337, b"\x01" * 32, 0, b"\x02" * 32, b""],   # unknown version
    [1, -1, b"\x01" * 32, 0, b"\x02" * 32, b""],     # negative chain id
    [1, 1337, b"\x01" * 32, True, b"\x02" * 32, b""],  # a bool is not a height
    [1, 1337, b"\x01" * 32, 0, b"\x02" * 32, b"\xff" * 65],  # absurd weight
    [1, 1337, b"\x01" * 32, 0, b"\x02" * 32],         # missing field
])
def test_malformed_status_is_a_wire_error(fields):
    with pytest.raises(WireError):
        decode_status(msgpack.packb(fields))


def test_requests_round_trip_and_limits_are_enforced():
    for request in (HashesRequest(10, 128, 4), BlocksRequest(0, MAX_BLOCKS_PER_RESPONSE)):
        assert decode_request(encode_request(request)) == request
    for bad in (["blocks", 0, MAX_BLOCKS_PER_RESPONSE + 1], ["blocks", 0, 0], ["hashes", 0, 10, 0],
                ["hashes", 0, 10_000, 1], ["blocks", 0], ["headers", 0, 1], "blocks", ["blocks", 1.5, 1]):
        with pytest.raises(WireError):
            decode_request(msgpack.packb(bad))
    with pytest.raises(WireError, match="not msgpack"):
        decode_request(b"\xc1")


def test_answers_carry_items_or_the_peer_error():
    assert decode_items(encode_items([b"a", b"b"]), 2) == [b"a", b"b"]
    with pytest.raises(WireError):
        decode_items(encode_items([b"a", b"b"]), 1)
    with pytest.raises(RemoteError, match="no such thing"):
        decode_items(encode_error("no such thing"), 1)
    with pytest.raises(WireError):
        decode_items(msgpack.packb(["ok", ["not bytes"]]), 1)


def test_transaction_batches_and_topics():
    assert decode_transaction_batch(encode_transaction_batch([b"a", b"bc"])) == [b"a", b"bc"]
    for bad in ([], [b""], [1], "x", [b"t"] * (MAX_TRANSACTIONS_PER_BATCH + 1)):
        with pytest.raises(WireError):
            decode_transaction_batch(msgpack.packb(bad))
    assert block_topic(1337) == "/gridnode/1337/block/1" and transaction_topic(7) == "/gridnode/7/tx/1"


def test_the_byte_budget_fits_the_wire():
    """A maximal transaction travels alone in a batch; a sync answer at its byte cap, of
    maximal blocks or of as many small ones as allowed, fits the response frame."""
    assert len(encode_transaction_batch([b"\xff" * MAX_TRANSACTION_SIZE])) <= MAX_GOSSIP_MESSAGE
    maximal_blocks = [b"\xff" * MAX_BLOCK_BYTES] * SYNC_RESPONSE_BLOCKS
    assert len(encode_items(maximal_blocks)) <= MAX_SYNC_RESPONSE_FRAME
    many_blocks = [b"\xff" * (MAX_BLOCKS_RESPONSE_BYTES // MAX_BLOCKS_PER_RESPONSE)] * MAX_BLOCKS_PER_RESPONSE
    assert len(encode_items(many_blocks)) <= MAX_SYNC_RESPONSE_FRAME


def test_transaction_batches_beyond_the_budget_are_refused_before_unpacking():
    with pytest.raises(WireError, match=f"exceeds {MAX_GOSSIP_MESSAGE}"):
        decode_transaction_batch(b"\x00" * (MAX_GOSSIP_MESSAGE + 1))
    with pytest.raises(WireError, match=f"1..{MAX_TRANSACTION_SIZE} bytes"):
        decode_transaction_batch(encode_transaction_batch([b"t", b"\xff" * (MAX_TRANSACTION_SIZE + 1)]))
