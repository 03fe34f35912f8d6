"""Filters forget clients that stop polling, as go-ethereum's do."""
from __future__ import annotations

import pytest
from consensus.engine import Signer
from genesis.config import Genesis
from genesis.devnet import dev_accounts, devnet_genesis_document
from market.contracts.addresses import FIAT_TOKEN
from node.chain import Chain
from node.intake import TransactionIntake
from node.mempool import Mempool
from node.producer import produce_block
from node.rpc.errors import RpcError
from node.rpc.eth import EthApi
from node.rpc.filters import FILTER_TIMEOUT, FilterApi
from node.store import Store
from vm.native.contract import encode_call
from vm.transactions import sign_legacy

SIGNER = Signer(b"\x09" * 32)


def test_unpolled_filters_expire_and_polled_ones_report_each_block_once(tmp_path):
    genesis = Genesis.from_json(devnet_genesis_document(SIGNER.address))
    chain = Chain(Store(str(tmp_path / "c")), genesis, genesis.create_engine())
    now = [1000.0]
    filters = FilterApi(EthApi(chain, TransactionIntake(chain, Mempool(1337, genesis.gas_limit)), []),
                        clock=lambda: now[0])
    kept, forgotten = filters.eth_newBlockFilter(), filters.eth_newBlockFilter()
    blocks = [produce_block(chain, Mempool(1337, genesis.gas_limit), SIGNER, n).block for n in (1, 2)]
    assert filters.eth_getFilterChanges(kept) == ["0x" + b.hash.hex() for b in blocks]
    assert filters.eth_getFilterChanges(kept) == []
    now[0] += FILTER_TIMEOUT - 1
    filters.eth_getFilterChanges(kept)
    now[0] += 2
    assert filters.eth_getFilterChanges(kept) == []  # polled 2 s ago: alive
    with pytest.raises(RpcError, match="filter not found"):
        filters.eth_getFilterChanges(forgotten)
    assert filters.eth_uninstallFilter(kept) and not filters.eth_uninstallFilter(kept)
    chain.store.close()


def test_get_logs_on_a_cold_block_reads_transaction_hashes_without_decoding_the_transactions(tmp_path, monkeypatch):
    """eth_getLogs over a range reads each block's transaction hashes; recovering every sender
    of every block in the range made a 50-block query of full blocks take 5 s (bench/scale.py)."""
    genesis = Genesis.from_json(devnet_genesis_document(SIGNER.address))
    chain = Chain(Store(str(tmp_path / "c")), genesis, genesis.create_engine())
    mempool = Mempool(1337, genesis.gas_limit)
    intake = TransactionIntake(chain, mempool)
    sender = dev_accounts(2)[1]
    tx, _ = intake.submit(sign_legacy(1337, 0, 10**10, 100_000, FIAT_TOKEN, 0,
                                      encode_call("approve(address,uint256)", (SIGNER.address.to_checksum(), 5)),
                                      sender.private_key))
    produce_block(chain, mempool, SIGNER, 1)
    chain.store.close()
    cold = Chain(Store(str(tmp_path / "c")), genesis, genesis.create_engine())  # nothing decoded or cached
    monkeypatch.setattr(cold, "transaction_from_raw", lambda raw: pytest.fail("a transaction was decoded"))
    [log] = EthApi(cold, TransactionIntake(cold, Mempool(1337, genesis.gas_limit)), []).eth_getLogs(
        {"fromBlock": "0x0", "toBlock": "latest", "address": FIAT_TOKEN.to_checksum()})
    assert log["transactionHash"] == "0x" + tx.hash.hex() and log["blockNumber"] == "0x1"
    cold.store.close()
