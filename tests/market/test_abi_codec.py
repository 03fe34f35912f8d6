"""The native contracts' direct ABI path agrees with eth_abi byte for byte, and refuses
what eth_abi refuses."""
from __future__ import annotations

import os

import eth_abi
import pytest
from eth_abi.exceptions import DecodingError
from hypothesis import given, settings
from hypothesis import strategies as st
from vm.native import abi

EXAMPLES = int(os.environ.get("GRIDNODE_FUZZ_EXAMPLES", "200"))
STATIC = ["uint256", "uint64", "uint8", "bool", "address", "bytes32"]


def values_for(abi_type: str):
    if abi_type == "bool":
        return st.booleans()
    if abi_type == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if abi_type == "bytes32":
        return st.binary(min_size=32, max_size=32)
    return st.integers(0, 2 ** int(abi_type[4:]) - 1)


rows = st.lists(st.sampled_from(STATIC), min_size=1, max_size=6).flatmap(
    lambda types: st.tuples(st.just(types), st.tuples(*(values_for(t) for t in types))))


@settings(max_examples=EXAMPLES, deadline=None)
@given(rows)
def test_encoding_and_decoding_match_eth_abi(row):
    types, values = row
    encoded = abi.encode(types, values)
    assert encoded == eth_abi.encode(types, list(values))
    assert abi.decode(types, encoded) == tuple(eth_abi.decode(types, encoded))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.sampled_from(STATIC), min_size=1, max_size=4), st.binary(max_size=160))
def test_arbitrary_bytes_decode_alike_or_fail_alike(types, data):
    try:
        expected = tuple(eth_abi.decode(types, data))
    except DecodingError:
        with pytest.raises(DecodingError):
            abi.decode(types, data)
        return
    assert abi.decode(types, data) == expected


def test_values_of_the_wrong_kind_are_judged_by_eth_abi():
    with pytest.raises(Exception) as ours:
        abi.encode(["uint8"], [256])
    with pytest.raises(type(ours.value)):
        eth_abi.encode(["uint8"], [256])
    assert abi.encode(["string", "uint256"], ["x", 1]) == eth_abi.encode(["string", "uint256"], ["x", 1])
