"""Decoding what peers send: arbitrary bytes and arbitrary RLP or msgpack
structures go in, and only the documented errors come out (InvalidBlock,
InvalidTransaction, WireError; RemoteError for a peer's error answer). What is
accepted is canonical: re-encoding it gives back the same bytes.

The example budget is small for CI; raise it with GRIDNODE_FUZZ_EXAMPLES=20000.
fuzz/atheris_decoders.py runs the same decoders coverage-guided."""
from __future__ import annotations

import os
from dataclasses import replace

import msgpack
import pytest
import rlp
from eth_account import Account
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from node.p2p.port import ChainStatus
from node.p2p.wire import (
    RemoteError,
    WireError,
    decode_items,
    decode_request,
    decode_status,
    decode_transaction_batch,
    encode_items,
    encode_status,
    encode_transaction_batch,
)
from vm import codec
from vm.blocks import Block, Header, InvalidBlock, Log, Receipt, decode_block
from vm.limits import MAX_BLOCK_BYTES, MAX_EXTRA_DATA, MAX_HEADER_BYTES, MAX_SEAL_BYTES, MAX_TRANSACTION_SIZE
from vm.transactions import InvalidTransaction, decode_transaction
from vm.types import Address, Hash32

FUZZ = settings(max_examples=int(os.environ.get("GRIDNODE_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SENDER = Account.from_key("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
UINT256 = st.integers(min_value=0, max_value=2**256 - 1)
UINT64 = st.integers(min_value=0, max_value=2**64 - 1)
rlp_structures = st.recursive(st.binary(max_size=40), lambda inner: st.lists(inner, max_size=6), max_leaves=40)
msgpack_structures = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=10) | st.floats(),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30)


def nested(depth: int) -> bytes:
    """An RLP list nested `depth` deep, without recursing to build it."""
    encoded = b"\xc0"
    for _ in range(depth):
        encoded = rlp.codec.length_prefix(len(encoded), 0xC0) + encoded
    return encoded


def signed(**fields) -> bytes:
    tx = {"to": "0x" + "22" * 20, "value": 5, "gas": 21_000, "nonce": 3, "chainId": 1337, **fields}
    return bytes(SENDER.sign_transaction(tx).raw_transaction)


VALID_TRANSACTIONS = [
    signed(gasPrice=7),
    signed(gasPrice=7, accessList=[{"address": "0x" + "33" * 20, "storageKeys": ["0x" + "01" * 32]}]),
    signed(maxFeePerGas=9, maxPriorityFeePerGas=2, data=b"\x00\x01" * 40),
]

HASHES = st.binary(min_size=32, max_size=32).map(Hash32)
headers = st.builds(
    Header, parent_hash=HASHES, number=UINT256, timestamp=UINT256,
    producer=st.binary(min_size=20, max_size=20).map(Address), state_root=HASHES, transactions_root=HASHES,
    receipts_root=HASHES, logs_bloom=st.binary(min_size=256, max_size=256),
    gas_limit=st.integers(min_value=21_000 * len(VALID_TRANSACTIONS), max_value=2**256 - 1), gas_used=UINT256,
    base_fee=UINT256, difficulty=UINT256, extra_data=st.binary(max_size=MAX_EXTRA_DATA),
    seal=st.binary(max_size=MAX_SEAL_BYTES))
HEADER = Header(Hash32(b"\x01" * 32), 5, 6, Address(b"\x02" * 20), Hash32(b"\x03" * 32), Hash32(b"\x04" * 32),
                Hash32(b"\x05" * 32), bytes(256), 30_000_000, 0, 7, 2)


def mutations(valid: list[bytes]):
    """A valid encoding with a few bytes changed, inserted or cut."""
    @st.composite
    def mutate(draw):
        data = bytearray(draw(st.sampled_from(valid)))
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            position = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
            action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
            if action == "flip" and data:
                data[position] ^= draw(st.integers(min_value=1, max_value=255))
            elif action == "insert":
                data.insert(position, draw(st.integers(min_value=0, max_value=255)))
            elif action == "delete" and data:
                del data[position]
            else:
                del data[position:]
        return bytes(data)
    return mutate()


# -- the RLP decoder itself ---------------------------------------------------------------
@FUZZ
@given(rlp_structures)
def test_rlp_round_trips_every_structure(structure):
    assert codec.decode(rlp.encode(structure), max_depth=64) == structure


@FUZZ
@given(st.binary(max_size=200) | rlp_structures.map(rlp.encode).flatmap(lambda data: mutations([data])))
def test_rlp_accepts_exactly_what_strict_pyrlp_accepts(data):
    try:
        expected = rlp.decode(data, strict=True)
    except rlp.DecodingError:
        expected = None
    try:
        decoded = codec.decode(data, max_depth=64)
    except codec.MalformedRLP:
        decoded = None
    assert decoded == expected
    if decoded is not None:
        assert rlp.encode(decoded) == data, "accepted means canonical"


@pytest.mark.parametrize("data,reason", [
    (nested(5), "nested too deep"),
    (nested(100_000), "nested too deep"),  # pyrlp: RecursionError
    (b"\x81\x05", "single byte below 0x80"),
    (b"\xb8\x05hello", "long length prefix for a short item"),
    (b"\xb9\x00\x38" + b"x" * 56, "leading zero"),
    (b"\xc2\x01", "runs past"),
    (b"\xc1\x01\x02", "1 bytes after the RLP item"),
    (b"", "input ends"),
])
def test_rlp_refusals_say_why(data, reason):
    with pytest.raises(codec.MalformedRLP, match=reason):
        codec.decode(data)


# -- transactions -------------------------------------------------------------------------
def _only_invalid_transaction(data: bytes) -> None:
    try:
        tx = decode_transaction(data)
    except InvalidTransaction:
        return
    assert tx.raw == data and len(data) <= MAX_TRANSACTION_SIZE


@FUZZ
@given(st.binary(max_size=300) | mutations(VALID_TRANSACTIONS)
       | st.tuples(st.sampled_from([b"", b"\x01", b"\x02", b"\x03"]), rlp_structures.map(rlp.encode)).map(b"".join))
def test_transaction_decoding_raises_only_invalid_transaction(data):
    _only_invalid_transaction(data)


@FUZZ
@given(nonce=UINT64, gas=UINT64, value=UINT256, fee=st.integers(min_value=0, max_value=2**255),
       data=st.binary(max_size=300), kind=st.sampled_from(["legacy", "access list", "dynamic fee"]),
       to=st.sampled_from([None, "0x" + "44" * 20]))
def test_signed_transactions_round_trip(nonce, gas, value, fee, data, kind, to):
    fees = {"legacy": {"gasPrice": fee}, "access list": {"gasPrice": fee, "accessList": []},
            "dynamic fee": {"maxFeePerGas": fee, "maxPriorityFeePerGas": fee // 2}}[kind]
    fields = {"nonce": nonce, "gas": gas, "value": value, "data": data, "chainId": 1337, **fees}
    if to is not None:
        fields["to"] = to
    raw = bytes(SENDER.sign_transaction(fields).raw_transaction)
    tx = decode_transaction(raw)
    assert (tx.nonce, tx.gas, tx.value, tx.data, tx.max_fee_per_gas) == (nonce, gas, value, data, fee)
    assert tx.sender == bytes.fromhex(SENDER.address[2:]) and tx.raw == raw


@pytest.mark.parametrize("fields,reason", [
    ([b"\x01"] * 3 + [b"", b"\x01", [b"x"]] + [b""] * 3, "data must be a byte string"),  # data is a list
    ([b"\x00\x01"] + [b""] * 8, "nonce is not a canonical integer"),                # leading zero
    ([b"\x01" * 9] + [b""] * 8, "nonce exceeds 64 bits"),                           # EIP-2681
    ([b"", b"\x01" * 33] + [b""] * 7, "gasPrice exceeds 256 bits"),
    ([b"", b"", b"", b"\x01" * 19] + [b""] * 5, "to must be empty or 20 bytes"),
])
def test_malformed_legacy_fields_are_named(fields, reason):
    with pytest.raises(InvalidTransaction, match=reason):
        decode_transaction(rlp.encode(fields))


def test_deep_and_oversized_transactions_are_invalid():
    with pytest.raises(InvalidTransaction, match="nested too deep"):
        decode_transaction(b"\x02" + nested(20_000))
    with pytest.raises(InvalidTransaction, match="oversized data"):
        decode_transaction(b"\x02" + bytes(MAX_TRANSACTION_SIZE))
    bad_entry = [b"", b"", b"", b"", b"", b"", b"", b"", [[b"\x01" * 20, [b"\x02" * 31]]], b"", b"", b""]
    with pytest.raises(InvalidTransaction, match="storage keys item must be 32 bytes"):
        decode_transaction(b"\x02" + rlp.encode(bad_entry))


# -- headers, blocks, receipts ------------------------------------------------------------
@FUZZ
@given(headers)
def test_headers_round_trip(header):
    encoded = header.encode()
    assert len(encoded) <= MAX_HEADER_BYTES
    assert Header.decode(encoded) == header


@FUZZ
@given(st.binary(max_size=400) | rlp_structures.map(rlp.encode) | headers.map(Header.encode).flatmap(
    lambda encoded: mutations([encoded])))
def test_header_decoding_raises_only_invalid_block_and_accepts_only_canonical(data):
    try:
        header = Header.decode(data)
    except InvalidBlock:
        return
    assert header.encode() == data


@FUZZ
@given(headers, st.lists(st.sampled_from(VALID_TRANSACTIONS), max_size=3))
def test_blocks_round_trip(header, raws):
    block = Block(header, tuple(decode_transaction(raw) for raw in raws))
    assert decode_block(block.encode(), decode_transaction) == block


@FUZZ
@given(st.binary(max_size=400) | rlp_structures.map(rlp.encode)
       | st.tuples(headers.map(Header.encode), st.lists(st.sampled_from(VALID_TRANSACTIONS) | st.binary(max_size=50),
                                                        max_size=3)).map(rlp.encode).flatmap(lambda b: mutations([b])))
def test_block_decoding_raises_only_invalid_block_and_accepts_only_canonical(data):
    try:
        block = decode_block(data, decode_transaction)
    except InvalidBlock:
        return
    assert block.encode() == data


@pytest.mark.parametrize("change,reason", [
    (lambda f: f.__setitem__(1, [b"\x01"]), "number must be a byte string"),      # a field that is a list
    (lambda f: f.__setitem__(2, b"\x00\x05"), "timestamp is not a canonical integer"),
    (lambda f: f.__setitem__(8, b"\x01" * 33), "gas limit exceeds 256 bits"),
    (lambda f: f.__setitem__(3, b"\x01" * 19), "producer must be 20 bytes"),
    (lambda f: f.__setitem__(7, b"\x00" * 255), "logs bloom must be 256 bytes"),
    (lambda f: f.__setitem__(13, b"\x01" * (MAX_SEAL_BYTES + 1)), "seal of 66 bytes exceeds 65"),
    (lambda f: f.append(b""), "header must have 14 fields"),
])
def test_malformed_header_fields_are_named(change, reason):
    fields = rlp.decode(HEADER.encode())
    change(fields)
    with pytest.raises(InvalidBlock, match=reason):
        decode_block(rlp.encode([rlp.encode(fields), []]), decode_transaction)


def test_deep_oversized_and_overfull_blocks_are_invalid():
    with pytest.raises(InvalidBlock, match="nested too deep"):
        decode_block(nested(100_000), decode_transaction)
    with pytest.raises(InvalidBlock, match=f"exceeds {MAX_BLOCK_BYTES}"):
        decode_block(bytes(MAX_BLOCK_BYTES + 1), decode_transaction)
    two_transactions_of_gas = replace(HEADER, gas_limit=42_000)
    with pytest.raises(InvalidBlock, match="3 transactions cannot fit a gas limit of 42000"):
        decode_block(rlp.encode([two_transactions_of_gas.encode(), VALID_TRANSACTIONS]), decode_transaction)


def test_a_malformed_last_transaction_is_found_before_any_sender_is_recovered():
    recovered = []

    def recording_decoder(raw):
        recovered.append(raw)
        return decode_transaction(raw)

    with pytest.raises(InvalidBlock, match="invalid transaction: malformed transaction"):
        decode_block(rlp.encode([HEADER.encode(), VALID_TRANSACTIONS + [b"\x02\xc1\xc0"]]), recording_decoder)
    assert recovered == []


receipts = st.builds(
    Receipt, tx_type=st.integers(min_value=0, max_value=2), succeeded=st.booleans(), cumulative_gas_used=UINT64,
    gas_used=UINT64, effective_gas_price=UINT256,
    logs=st.lists(st.builds(Log, st.binary(min_size=20, max_size=20).map(Address),
                            st.lists(st.binary(min_size=32, max_size=32), max_size=4).map(tuple),
                            st.binary(max_size=64)), max_size=3).map(tuple),
    bloom=st.binary(min_size=256, max_size=256))


@FUZZ
@given(receipts)
def test_receipts_round_trip(receipt):
    assert Receipt.decode(receipt.encode()) == receipt


@FUZZ
@given(st.binary(max_size=300) | rlp_structures.map(rlp.encode) | receipts.map(Receipt.encode).flatmap(
    lambda encoded: mutations([encoded])))
def test_receipt_decoding_raises_only_invalid_block(data):
    try:
        receipt = Receipt.decode(data)
    except InvalidBlock:
        return
    assert receipt.encode() == data


# -- the wire's msgpack messages ----------------------------------------------------------
WIRE_DECODERS = [decode_status, decode_request, lambda payload: decode_items(payload, 128), decode_transaction_batch]


def _only_wire_errors(payload: bytes) -> None:
    for decoder in WIRE_DECODERS:
        try:
            decoder(payload)
        except (WireError, RemoteError):
            continue


@FUZZ
@given(st.binary(max_size=300) | msgpack_structures.map(lambda value: msgpack.packb(value, use_bin_type=True)))
@example(b"\x91" * 5000)  # msgpack nested deeper than its stack
@example(msgpack.packb(["ok", [b"a"]]) + b"\x00")  # trailing bytes
def test_wire_decoders_raise_only_wire_errors(payload):
    _only_wire_errors(payload)


@FUZZ
@given(st.builds(ChainStatus, UINT64, st.binary(min_size=32, max_size=32), UINT64, st.binary(min_size=32, max_size=32),
                 st.integers(min_value=0, max_value=2**512 - 1)),
       st.lists(st.binary(min_size=1, max_size=100), min_size=1, max_size=20))
def test_wire_messages_round_trip(status, items):
    assert decode_status(encode_status(status)) == status
    assert decode_items(encode_items(items), 128) == items
    assert decode_transaction_batch(encode_transaction_batch(items)) == items


ENCODABLE = st.recursive(st.binary(max_size=80) | st.integers(min_value=0, max_value=2**256 - 1),
                         lambda children: st.lists(children, max_size=6) | st.tuples(children, children), max_leaves=30)


@given(ENCODABLE)
def test_the_fast_encoder_gives_pyrlps_bytes_and_decodes_back(item):
    encoded = codec.encode(item)
    assert encoded == rlp.encode(item)
    assert codec.encode(codec.decode(encoded)) == encoded  # canonical both ways


def test_the_fast_encoder_refuses_what_rlp_cannot_hold():
    for item, error in ((-1, ValueError), ("text", TypeError), ([1.5], TypeError)):
        with pytest.raises(error):
            codec.encode(item)
