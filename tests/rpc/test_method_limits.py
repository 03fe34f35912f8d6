"""Every RPC method's work is bounded: log queries and filters by their criteria,
their range and the request's budget; filters per client; historical state and
mining statistics by caches and indexes instead of rescans; hex by Ethereum's rules."""
from __future__ import annotations

import time

import eth_abi
import pytest
from consensus.engine import Signer
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from helpers import DEV_KEYS
from node import history
from node.chain import Chain, ImportStatus
from node.intake import TransactionIntake
from node.mempool import Mempool
from node.producer import produce_block
from node.rpc import eth as eth_module
from node.rpc import filters as filters_module
from node.rpc import grid as grid_module
from node.rpc import params
from node.rpc.budget import request_context
from node.rpc.errors import INVALID_PARAMS, SERVER_ERROR, RpcError
from node.rpc.eth import EthApi
from node.rpc.filters import MAX_FILTERS_PER_CLIENT, FilterApi
from node.rpc.grid import GridApi, NodeIdentity
from node.store import Store
from vm.native.registry import REGISTRY
from vm.transactions import decode_transaction

SIGNER = Signer(b"\x07" * 32)
ADMIN = Account.from_key(DEV_KEYS[0])
REGISTERED = REGISTRY.events["Registered"][0]
REGISTER = next(selector for selector, function in REGISTRY.functions.items() if function.name == "register")


def open_chain(path, engine: str = "poa") -> Chain:
    document = devnet_genesis_document(SIGNER.address, engine)
    if engine == "pow":
        document["consensus"].update(difficulty=300, minDifficulty=100)
    genesis = Genesis.from_json(document)
    return Chain(Store(str(path)), genesis, genesis.create_engine())


def registration(nonce: int, account: str):
    """The admin registers `account`: a transaction whose receipt carries a Registered log."""
    calldata = REGISTER + eth_abi.encode(["address", "uint8", "string"], [account, 1, f"meter-{nonce}"])
    return decode_transaction(bytes(ADMIN.sign_transaction({
        "to": REGISTRY.address.to_checksum(), "data": calldata, "gas": 300_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9}).raw_transaction))


def produce(chain: Chain, txs=(), signer: Signer = SIGNER):
    mempool = Mempool(chain.chain_id, chain.genesis.gas_limit)
    for tx in txs:
        mempool.add(tx, chain.state(), chain.environment(chain.head, 0, signer.address).base_fee)
    return produce_block(chain, mempool, signer, chain.head.timestamp + 1).block


def topic_of(account: str) -> str:
    return "0x" + "00" * 12 + account[2:].lower()


@pytest.fixture
def chain(tmp_path):
    opened = open_chain(tmp_path / "chain")
    yield opened
    opened.store.close()


@pytest.fixture
def eth(chain):
    return EthApi(chain, TransactionIntake(chain, Mempool(chain.chain_id, chain.genesis.gas_limit)), [])


def expired_request():
    """A request whose work budget is already used up."""
    return request_context("10.0.0.9", deadline=time.monotonic() - 1)


many_addresses = ["0x" + f"{n:040x}" for n in range(params.MAX_LOG_ALTERNATIVES + 1)]
many_topics = ["0x" + f"{n:064x}" for n in range(params.MAX_LOG_ALTERNATIVES + 1)]


@pytest.mark.parametrize("criteria,message", [
    ({"address": many_addresses}, "exceed max addresses or topics per search position"),
    ({"topics": [None, many_topics]}, "exceed max addresses or topics per search position"),
    ({"topics": [None] * 5}, "exceed max topics"),
])
def test_log_criteria_beyond_the_limits_are_refused(eth, criteria, message):
    filters = FilterApi(eth)
    for method in (eth.eth_getLogs, filters.eth_newFilter):
        with pytest.raises(RpcError, match=message) as refused:
            method({"fromBlock": "0x0", **criteria})
        assert refused.value.code == INVALID_PARAMS
    assert eth.eth_getLogs({"fromBlock": "0x0", "address": many_addresses[:-1], "topics": [many_topics[:-1]]}) == []


def test_queries_past_the_budget_end_with_the_budget_error(chain, eth):
    for _ in range(3):
        produce(chain)
    filters = FilterApi(eth)
    log_filter, block_filter = filters.eth_newFilter({}), filters.eth_newBlockFilter()
    produce(chain)
    expensive = [lambda: eth.eth_getLogs({"fromBlock": "0x0"}),
                 lambda: eth.eth_feeHistory("0x4", "latest", [50]),
                 lambda: eth.eth_getBalance(ADMIN.address, "0x1"),
                 lambda: filters.eth_getFilterChanges(log_filter),
                 lambda: filters.eth_getFilterChanges(block_filter)]
    with expired_request():
        for call in expensive:
            with pytest.raises(RpcError, match="work budget") as aborted:
                call()
            assert aborted.value.code == SERVER_ERROR
    assert filters.eth_getFilterChanges(block_filter) == ["0x" + chain.head.hash.hex()]  # the aborted poll lost nothing


def test_a_filter_behind_by_many_blocks_catches_up_over_several_polls(chain, eth, monkeypatch):
    monkeypatch.setattr(filters_module, "FILTER_MAX_BLOCKS_PER_POLL", 2)
    filters = FilterApi(eth)
    block_filter = filters.eth_newBlockFilter()
    blocks = [produce(chain) for _ in range(5)]
    polls = [filters.eth_getFilterChanges(block_filter) for _ in range(4)]
    assert [len(poll) for poll in polls] == [2, 2, 1, 0]
    assert sum(polls, []) == ["0x" + block.hash.hex() for block in blocks]


def test_filters_are_capped_per_client_not_globally(eth):
    filters = FilterApi(eth)
    with request_context("10.0.0.1"):
        installed = [filters.eth_newBlockFilter() for _ in range(MAX_FILTERS_PER_CLIENT)]
        with pytest.raises(RpcError, match="too many filters installed by this client"):
            filters.eth_newBlockFilter()
    with request_context("10.0.0.2"):
        other = filters.eth_newBlockFilter()
    with request_context("10.0.0.1"):
        assert filters.eth_uninstallFilter(installed[0])
        filters.eth_newBlockFilter()
    assert filters.eth_uninstallFilter(other)


def test_filters_are_capped_by_the_criteria_they_hold(eth, monkeypatch):
    filters = FilterApi(eth)
    wide = {"address": many_addresses[:params.MAX_LOG_ALTERNATIVES]}
    per_filter = 1 + params.MAX_LOG_ALTERNATIVES
    with request_context("10.0.0.1"):
        for _ in range(filters_module.MAX_FILTER_ENTRIES_PER_CLIENT // per_filter):
            filters.eth_newFilter(wide)
        with pytest.raises(RpcError, match="too many addresses and topics"):
            filters.eth_newFilter(wide)
    monkeypatch.setattr(filters_module, "MAX_FILTER_ENTRIES", filters_module.MAX_FILTER_ENTRIES_PER_CLIENT + 1)
    with request_context("10.0.0.2"), pytest.raises(RpcError, match="too many filters installed on this node"):
        filters.eth_newFilter(wide)


def test_filters_keep_the_parsed_criteria_not_the_callers_object(chain, eth):
    kept, other = Account.create().address, Account.create().address
    filters = FilterApi(eth)
    criteria = {"address": [REGISTRY.address.to_checksum().lower()],
                "topics": [["0x" + REGISTERED.hex()], [topic_of(kept)]]}
    filter_id = filters.eth_newFilter(criteria)
    criteria["topics"][1].append(topic_of(other))  # a client library reusing its object
    produce(chain, [registration(0, kept), registration(1, other)])
    changes = filters.eth_getFilterChanges(filter_id)
    assert [entry["topics"][1] for entry in changes] == [topic_of(kept)]
    assert filters.eth_getFilterLogs(filter_id) == eth.eth_getLogs({"topics": [None, topic_of(kept)]})


def test_empty_lists_in_criteria_match_anything_as_in_geth(chain, eth):
    produce(chain, [registration(0, Account.create().address)])
    logs = eth.eth_getLogs({"fromBlock": "0x1"})
    assert len(logs) == 1
    assert eth.eth_getLogs({"fromBlock": "0x1", "address": [], "topics": [[], None]}) == logs


@pytest.mark.parametrize("limit", ["LOGS_MAX_RESULTS", "LOGS_MAX_RESPONSE_BYTES"])
def test_log_answers_are_bounded_in_count_and_bytes(chain, eth, monkeypatch, limit):
    produce(chain, [registration(0, Account.create().address)])
    monkeypatch.setattr(eth_module, limit, 0)
    with pytest.raises(RpcError, match="query returned more than"):
        eth.eth_getLogs({"fromBlock": "0x1"})


def test_logs_of_a_side_block_are_an_empty_list(tmp_path, chain, eth):
    other = open_chain(tmp_path / "other")
    side = produce(other, [registration(0, Account.create().address)])
    produce(chain)
    produce(chain)
    assert chain.import_block(side) is ImportStatus.SIDE
    assert eth.eth_getLogs({"blockHash": "0x" + side.hash.hex()}) == []
    with pytest.raises(RpcError, match="unknown block"):
        eth.eth_getLogs({"blockHash": "0x" + "ab" * 32})
    with pytest.raises(RpcError, match="non-canonical"):
        eth.eth_getBalance(ADMIN.address, {"blockHash": "0x" + side.hash.hex()})
    other.store.close()


def test_historical_reader_is_built_once_per_head_and_block(chain, eth, monkeypatch):
    recipient = Account.create().address
    for nonce in range(3):
        produce(chain, [_transfer(nonce, recipient)])
    reads = []
    undo_log = chain.store.undo_log
    monkeypatch.setattr(chain.store, "undo_log", lambda block_hash: reads.append(block_hash) or undo_log(block_hash))
    assert [eth.eth_getBalance(recipient, "0x1") for _ in range(3)] == ["0x1"] * 3
    assert len(reads) == 2  # blocks 3 and 2, rolled back once
    produce(chain)
    assert eth.eth_getBalance(recipient, "0x1") == "0x1" and len(reads) == 5  # a new head: rolled back again
    monkeypatch.setattr(history, "HISTORY_CACHE_READERS", 1)
    eth.eth_getBalance(recipient, "0x2")
    eth.eth_getBalance(recipient, "0x1")
    assert len(reads) == 5 + 2 + 3  # block 1's reader was evicted by block 2's
    uncached = history.state_at(chain, 2).get_balance(params.address(recipient))
    assert eth.eth_getBalance(recipient, "0x2") == hex(uncached) == "0x2"


def _transfer(nonce: int, recipient: str):
    return decode_transaction(bytes(ADMIN.sign_transaction({
        "to": recipient, "value": 1, "gas": 21_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9}).raw_transaction))


MINERS = [Signer(bytes([0x50 + n]) * 32) for n in range(3)]


def _rescanned_stats(chain: Chain, window: int | None) -> dict:
    first = max(chain.head.number - window + 1, 1) if window else 1
    won: dict[str, int] = {}
    for number in range(first, chain.head.number + 1):
        producer = chain.header_by_number(number).producer.to_checksum()
        won[producer] = won.get(producer, 0) + 1
    return won


@pytest.mark.parametrize("remembered", [None, 1], ids=["within the remembered hashes", "rebuilt"])
def test_mining_stats_follow_reorgs_and_equal_a_full_rescan(tmp_path, monkeypatch, remembered):
    if remembered is not None:
        monkeypatch.setattr(grid_module, "MAX_REORG_DEPTH", remembered)
    ours, theirs = open_chain(tmp_path / "ours", "pow"), open_chain(tmp_path / "theirs", "pow")
    shared = [produce(ours, signer=MINERS[n % 2]) for n in range(3)]
    grid = GridApi(ours, Mempool(ours.chain_id, ours.genesis.gas_limit), NodeIdentity(None, "", ""))
    for block in shared:
        theirs.import_block(block)
    produce(ours, signer=MINERS[0])
    produce(ours, signer=MINERS[1])
    heavier = [produce(theirs, signer=MINERS[2]) for _ in range(4)]
    statuses = [ours.import_block(block) for block in heavier]
    assert ImportStatus.HEAD in statuses and ours.head.hash == theirs.head.hash
    for window in (None, 1, 2, 4, 7, 10**6):
        stats = grid.grid_miningStats(window)
        assert {m["address"]: m["blocks"] for m in stats["miners"] if m["blocks"]} == _rescanned_stats(ours, window)
    assert grid.grid_miningStats()["orphans"] == 2
    restarted = GridApi(ours, grid.mempool, grid.identity)  # built from the store at start
    assert restarted.grid_miningStats() == grid.grid_miningStats()
    with pytest.raises(RpcError, match="window"):
        grid.grid_miningStats(2**64)
    ours.store.close()
    theirs.store.close()


def test_mining_stats_do_not_walk_the_chain(tmp_path, monkeypatch):
    chain = open_chain(tmp_path / "pow", "pow")
    for n in range(4):
        produce(chain, signer=MINERS[n % 2])
    grid = GridApi(chain, Mempool(chain.chain_id, chain.genesis.gas_limit), NodeIdentity(None, "", ""))
    monkeypatch.setattr(chain, "header_by_number", lambda number: pytest.fail("grid_miningStats rescanned the chain"))
    assert [m["blocks"] for m in grid.grid_miningStats()["miners"]] == [2, 2]
    chain.store.close()


@pytest.mark.parametrize("loophole", ["0x1_0", " 0x10", "0x10 ", "0x01", "0x", "-0x1", "+0x1", "0x\u0663",
                                      "0x" + "f" * 65, 16, None, True])
def test_hex_quantities_follow_ethereum_rules(loophole):
    with pytest.raises(RpcError, match="invalid argument") as refused:
        params.quantity(loophole)
    assert refused.value.code == INVALID_PARAMS


@pytest.mark.parametrize("loophole", ["0x12 34", "0x1_2", "0x123", "0x\u0663\u0663", "12", "0xgg"])
def test_hex_data_follows_ethereum_rules(loophole):
    with pytest.raises(RpcError, match="invalid argument"):
        params.data(loophole)


@pytest.mark.parametrize("value,expected", [("0x0", 0), ("0x10", 16), ("0XfF", 255), ("0x" + "f" * 64, 2**256 - 1)])
def test_hex_quantities_wallets_send_still_parse(value, expected):
    assert params.quantity(value) == expected


def test_block_numbers_and_gas_are_64_bit():
    with pytest.raises(RpcError, match="64 bits"):
        params.block_id("0x1" + "0" * 16)
    with pytest.raises(RpcError, match="int64"):
        params.block_id("0x" + "f" * 16)
    with pytest.raises(RpcError, match="64 bits"):
        params.transaction_call({"to": "0x" + "11" * 20, "gas": "0x1" + "0" * 16})
    with pytest.raises(RpcError, match="both blockHash and blockNumber"):
        params.block_id({"blockHash": "0x" + "11" * 32, "blockNumber": "0x1"})
