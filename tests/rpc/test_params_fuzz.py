"""Property tests of the JSON-RPC argument parsers: any JSON value in, and out comes
either an `invalid argument` error or a value of the right type that is exactly what
the text said. CI runs a small budget; `GRIDNODE_FUZZ_EXAMPLES=20000 python -m pytest
tests/rpc/test_params_fuzz.py` runs a long one."""
from __future__ import annotations

import os

import pytest
from consensus.engine import Signer
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from hypothesis import given, settings
from hypothesis import strategies as st
from node.chain import Chain
from node.intake import TransactionIntake
from node.mempool import Mempool
from node.producer import produce_block
from node.rpc import params
from node.rpc.errors import INTERNAL_ERROR, INVALID_PARAMS, RpcError
from node.rpc.eth import EthApi
from node.rpc.filters import FilterApi
from node.rpc.grid import GridApi, NodeIdentity
from node.store import Store
from vm.types import Address, Hash32

budget = settings(max_examples=int(os.environ.get("GRIDNODE_FUZZ_EXAMPLES", "200")), deadline=None)

HEX_ALPHABET = "0123456789abcdefABCDEF"
hexish = st.builds(lambda prefix, body, cut, odd: prefix + body[:cut] + odd + body[cut:],
                   st.sampled_from(["0x", "0X", "", "x", " 0x", "-0x", "+0x", "0x0", "0x00"]),
                   st.text(HEX_ALPHABET, max_size=70), st.integers(0, 70),
                   st.sampled_from(["", "", "_", " ", "\t", "\n", "-", "\u0663", "\u00b2", "g"]))
"""Strings near the hex rules, with at most one loophole (an underscore, a space, a sign,
a non-ASCII digit, a leading zero) in them."""
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | hexish
           | st.sampled_from(params.BLOCK_TAGS) | st.sampled_from(["0x" + "11" * 20, "0x" + "22" * 32]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8) | st.sampled_from(
                               ["address", "topics", "fromBlock", "toBlock", "blockHash", "blockNumber",
                                "requireCanonical", "from", "to", "gas", "value", "data", "input"]), inner, max_size=5),
                           max_leaves=20)
arguments = hexish | json_values
"""Half near-hex strings, half any JSON value."""


def parsed_or_refused(parse, value):
    """The parser's result, or None when it refused with `invalid argument`; anything else fails."""
    try:
        return parse(value)
    except RpcError as error:
        assert error.code == INVALID_PARAMS and error.message.startswith("invalid argument")
        return None


def canonical_quantity(number: int, text: str) -> bool:
    return text[:2] in ("0x", "0X") and text[2:].lower() == format(number, "x")


@budget
@given(arguments)
def test_quantity_is_exactly_the_canonical_hex_it_was_given(value):
    number = parsed_or_refused(params.quantity, value)
    if number is not None:
        assert type(number) is int and 0 <= number < 2**256 and canonical_quantity(number, value)


@budget
@given(arguments)
def test_data_is_exactly_the_hex_it_was_given(value):
    raw = parsed_or_refused(params.data, value)
    if raw is not None:
        assert isinstance(raw, bytes) and value[:2] in ("0x", "0X") and value[2:].lower() == raw.hex()


@budget
@given(arguments)
def test_addresses_hashes_and_flags_have_their_types(value):
    for parse, kind, size in ((params.address, Address, 20), (params.hash32, Hash32, 32)):
        parsed = parsed_or_refused(parse, value)
        assert parsed is None or (isinstance(parsed, kind) and len(parsed) == size)
    assert parsed_or_refused(params.boolean, value) in (None, value if isinstance(value, bool) else None)


@budget
@given(arguments)
def test_block_ids_are_tags_numbers_or_hashes(value):
    for parse in (params.block_id, params.block_number):
        parsed = parsed_or_refused(parse, value)
        assert (parsed is None or parsed in params.BLOCK_TAGS or isinstance(parsed, Hash32)
                or (type(parsed) is int and 0 <= parsed <= params.MAX_BLOCK_NUMBER))


@budget
@given(json_values)
def test_call_objects_have_typed_fields(value):
    call = parsed_or_refused(params.transaction_call, value)
    if call is not None:
        assert all(call[key] is None or isinstance(call[key], Address) for key in ("from", "to"))
        assert call["gas"] is None or 0 <= call["gas"] < 2**64
        assert 0 <= call["value"] < 2**256 and isinstance(call["data"], bytes)


@budget
@given(json_values)
def test_log_filters_are_parsed_within_their_bounds(value):
    query = parsed_or_refused(params.log_filter, value)
    if query is not None:
        assert len(query.topics) <= params.MAX_LOG_TOPICS
        groups = [query.addresses, *query.topics]
        assert all(group is None or 0 < len(group) <= params.MAX_LOG_ALTERNATIVES for group in groups)
        assert all(isinstance(a, Address) for a in query.addresses or ())
        assert all(isinstance(t, Hash32) for options in query.topics for t in options or ())


@budget
@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_quantities_round_trip(number):
    assert params.quantity(hex(number)) == number
    assert params.quantity(hex(number).upper().replace("0X", "0x")) == number


@budget
@given(st.integers(min_value=2**256, max_value=2**300))
def test_quantities_beyond_uint256_are_refused(number):
    assert parsed_or_refused(params.quantity, hex(number)) is None


@budget
@given(st.binary(max_size=100))
def test_data_round_trips(raw):
    assert params.data("0x" + raw.hex()) == raw


@pytest.fixture(scope="module")
def apis(tmp_path_factory):
    signer = Signer(b"\x0a" * 32)
    genesis = Genesis.from_json(devnet_genesis_document(signer.address))
    chain = Chain(Store(str(tmp_path_factory.mktemp("fuzz") / "chain")), genesis, genesis.create_engine())
    mempool = Mempool(chain.chain_id, genesis.gas_limit)
    for timestamp in (1, 2, 3):
        produce_block(chain, mempool, signer, timestamp)
    eth = EthApi(chain, TransactionIntake(chain, mempool), [])
    yield eth, FilterApi(eth), GridApi(chain, mempool, NodeIdentity(None, "", ""))
    chain.store.close()


@budget
@given(arguments, arguments, arguments)
def test_methods_answer_or_refuse_but_never_fail_inside(apis, first, second, third):
    eth, filters, grid = apis
    calls = [lambda: eth.eth_getLogs(first), lambda: filters.eth_newFilter(first),
             lambda: eth.eth_getBalance(first, second), lambda: eth.eth_getBlockByNumber(first, second),
             lambda: eth.eth_feeHistory(first, second, third), lambda: eth.eth_call(first, second),
             lambda: grid.grid_miningStats(first), lambda: filters.eth_getFilterChanges(first)]
    for call in calls:
        try:
            call()
        except RpcError as error:
            assert error.code != INTERNAL_ERROR
