"""The fixed-point model format and FedAvg (eq. 4.19): one byte encoding per model, every
malformed input refused with its reason, and an average that is the same on every node whatever
the order of the updates."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import rlp
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.rules import fedavg
from consensus.rules.fedavg import MAX_MAGNITUDE, Model, ModelError, aggregate_hash, decode, includable
from market.economics.federated import from_model, to_model
from vm.crypto import keccak256

LAYOUT = (("b", (3,)), ("w", (2, 3)))


def model(values, layout=LAYOUT, bits=8) -> Model:
    return Model(layout, bits, tuple(int(v) for v in values))


def nested(depth: int) -> bytes:
    """`depth` lists, each holding the next: valid RLP, far deeper than a model."""
    item = b"\xc0"
    for _ in range(depth):
        n = len(item)
        prefix = n.to_bytes((n.bit_length() + 7) // 8, "big")
        item = (bytes([0xc0 + n]) if n < 56 else bytes([0xf7 + len(prefix)]) + prefix) + item
    return item


def raw(values: bytes, layout=((b"w", [2]),), bits: int = 8, version: int = 1) -> bytes:
    return rlp.encode([version, bits, [[name, list(dims)] for name, dims in layout], values])


def test_float_parameters_round_trip_through_the_encoding():
    params = {"w": np.array([[0.5, -0.25, 1.0], [2.0, -3.5, 0.0]]), "b": np.array([0.125, -1.0, 7.0])}
    encoded = to_model(params, bits=16).encode()
    back = decode(encoded)
    assert back.layout == LAYOUT and back.bits == 16
    assert back.encode() == encoded and back.hash == keccak256(encoded)
    floats = from_model(back)
    assert all(np.array_equal(floats[name], params[name]) for name in params)


def test_the_actor_critic_model_is_7806_bytes():
    from market.economics.actor_critic import init_params
    from market.economics.v2v import ACTIONS, OBSERVATION_SIZE
    params = init_params(OBSERVATION_SIZE, len(ACTIONS), 32, np.random.default_rng(1))
    assert len(to_model(params).encode()) == 7_806


@pytest.mark.parametrize("blob, reason", [
    (b"\xc3\x01\x02", "not RLP"),
    (rlp.encode([1, 8, []]), "[version, bits, layout, values]"),
    (raw(b"\x00" * 16, version=2), "unknown model version 2"),
    (raw(b"\x00" * 16, bits=49), "fraction bits must be 0..48"),
    (rlp.encode([b"\x00\x01", 8, [[b"w", [2]]], b"\x00" * 16]), "version must be a canonical unsigned integer"),
    (raw(b"", layout=()), "1..64 tensors"),
    (raw(b"\x00" * 15), "the layout holds 2 values, the data 15 bytes"),
    (raw(b"\x00" * 16, layout=((b"w", [1]), (b"w", [1]))), "distinct"),
    (raw(b"", layout=((b"w", [0]),)), "dims are at least 1"),
    (raw(b"\x00" * 8, layout=((b"\xff", [1]),)), "ASCII"),
    (raw(b"", layout=((b"w", [1 << 21]),)), "at most 1048576 parameters"),
    (raw(np.array([MAX_MAGNITUDE + 1, 0], "<i8").tobytes()), "2^53 or more"),
    (raw(np.array([-2**63, 0], "<i8").tobytes()), "2^53 or more"),
    (nested(20_000), "nested too deep"),  # pyrlp's decoder would overflow the stack on it
])
def test_malformed_models_are_refused_with_a_reason(blob, reason):
    with pytest.raises(ModelError, match=reason.replace("[", r"\[").replace("]", r"\]").replace("^", r"\^")):
        decode(blob)


def test_only_the_canonical_encoding_decodes():
    good = model([1, 2, 3, 4, 5, 6, 7, 8, 9]).encode()
    assert decode(good).encode() == good
    with pytest.raises(ModelError, match="not RLP"):
        decode(good + b"\x00")  # trailing bytes
    assert good[:4] == b"\xf8\x56\x01\x08"  # a long list of 0x56 bytes: version 1, bits 8
    long_form = b"\xf8\x57\x01\x81\x08" + good[4:]  # bits 8 as a one-byte string: not canonical RLP
    with pytest.raises(ModelError, match="not RLP"):
        decode(long_form)


def test_fedavg_floors_negative_sums():
    a, b = model([-3, 1, 0, 5, -1, 2, 7, -7, 1]), model([0, 0, -1, 0, 0, 1, 0, 0, 0])
    average = fedavg.fedavg([a, b])
    assert list(average.values) == [-2, 0, -1, 2, -1, 1, 3, -4, 0]  # ⌊−3/2⌋ = −2, ⌊−1/2⌋ = −1
    assert average.layout == LAYOUT and average.bits == 8


def test_fedavg_refuses_updates_of_different_layouts_or_bits():
    a = model(range(9))
    with pytest.raises(ModelError, match="share one layout"):
        fedavg.fedavg([a, model(range(9), layout=(("b", (3,)), ("w", (3, 2))))])
    with pytest.raises(ModelError, match="share one layout"):
        fedavg.fedavg([a, model(range(9), bits=9)])
    with pytest.raises(ModelError, match="1..1024 updates"):
        fedavg.fedavg([])
    with pytest.raises(ModelError, match="not RLP"):
        aggregate_hash([a.encode(), b"junk"])


def test_the_exclusion_rule_keeps_what_decodes_and_shares_the_first_layout():
    good, other = model(range(9)).encode(), model(range(9), bits=9).encode()

    def chosen(blobs: dict[int, bytes], max_bytes: int = 10_000) -> list[int]:
        committed = {k: (keccak256(blob), len(blob)) for k, blob in blobs.items()}
        return includable(committed, blobs, max_bytes)[0]

    assert chosen({4: good, 0: b"junk", 2: other, 3: good}) == [2]
    assert chosen({4: good, 3: good, 7: other}) == [3, 4]
    assert chosen({1: b""}) == []
    assert chosen({4: good, 3: good}, max_bytes=len(good)) == [3]


values = st.lists(st.integers(-MAX_MAGNITUDE, MAX_MAGNITUDE), min_size=9, max_size=9)


@settings(max_examples=60, deadline=None)
@given(values, st.integers(1, 16))
def test_fedavg_of_identical_updates_is_that_update(update, copies):
    one = model(update)
    assert fedavg.fedavg([one] * copies).encode() == one.encode()


@settings(max_examples=60, deadline=None)
@given(st.lists(values, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_the_order_of_the_updates_does_not_change_the_aggregate(updates, rng):
    models = [model(u) for u in updates]
    shuffled = list(models)
    rng.shuffle(shuffled)
    assert fedavg.fedavg(shuffled).hash == fedavg.fedavg(models).hash
    exact = [math.floor(Fraction(sum(column), len(updates))) for column in zip(*updates)]
    assert list(fedavg.fedavg(models).values) == exact
