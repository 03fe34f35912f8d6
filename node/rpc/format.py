"""The JSON shapes of blocks, transactions, receipts and logs, as go-ethereum returns them."""
from __future__ import annotations

from vm.blocks import Header, Log, Receipt
from vm.transactions import LEGACY, Transaction

EMPTY_UNCLES_HASH = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
ZERO_HASH_HEX = "0x" + "00" * 32


def hexint(value: int) -> str:
    return hex(value)


def hexbytes(value: bytes) -> str:
    return "0x" + value.hex()


def address(value) -> str | None:
    return None if value is None else value.to_checksum()


def header_json(header: Header, total_weight: int, size: int) -> dict:
    return {
        "number": hexint(header.number),
        "hash": hexbytes(header.hash),
        "parentHash": hexbytes(header.parent_hash),
        "nonce": "0x0000000000000000",
        "mixHash": ZERO_HASH_HEX,
        "sha3Uncles": EMPTY_UNCLES_HASH,
        "logsBloom": hexbytes(header.logs_bloom),
        "transactionsRoot": hexbytes(header.transactions_root),
        "stateRoot": hexbytes(header.state_root),
        "receiptsRoot": hexbytes(header.receipts_root),
        "miner": address(header.producer),
        "difficulty": hexint(header.difficulty),
        "totalDifficulty": hexint(total_weight),
        "extraData": hexbytes(header.extra_data),
        "seal": hexbytes(header.seal),
        "size": hexint(size),
        "gasLimit": hexint(header.gas_limit),
        "gasUsed": hexint(header.gas_used),
        "timestamp": hexint(header.timestamp),
        "baseFeePerGas": hexint(header.base_fee),
        "uncles": [],
    }


def transaction_json(tx: Transaction, header: Header | None = None, index: int | None = None) -> dict:
    result = {
        "type": hexint(tx.tx_type),
        "hash": hexbytes(tx.hash),
        "nonce": hexint(tx.nonce),
        "blockHash": hexbytes(header.hash) if header else None,
        "blockNumber": hexint(header.number) if header else None,
        "transactionIndex": hexint(index) if header else None,
        "from": address(tx.sender),
        "to": address(tx.to),
        "value": hexint(tx.value),
        "gas": hexint(tx.gas),
        "gasPrice": hexint(tx.effective_gas_price(header.base_fee) if header else tx.max_fee_per_gas),
        "input": hexbytes(tx.data),
        "v": hexint(tx.v),
        "r": hexint(tx.r),
        "s": hexint(tx.s),
    }
    if tx.chain_id is not None:
        result["chainId"] = hexint(tx.chain_id)
    if tx.tx_type != LEGACY:
        result["accessList"] = [{"address": address(a), "storageKeys": [hexbytes(k) for k in keys]}
                                for a, keys in tx.access_list]
        result["yParity"] = hexint(tx.v)
    if tx.tx_type == 2:
        result["maxFeePerGas"] = hexint(tx.max_fee_per_gas)
        result["maxPriorityFeePerGas"] = hexint(tx.max_priority_fee_per_gas)
    return result


def log_json(log: Log, tx_hash: bytes, header: Header, tx_index: int, log_index: int) -> dict:
    return {
        "address": address(log.address),
        "topics": [hexbytes(topic) for topic in log.topics],
        "data": hexbytes(log.data),
        "blockNumber": hexint(header.number),
        "blockHash": hexbytes(header.hash),
        "transactionHash": hexbytes(tx_hash),
        "transactionIndex": hexint(tx_index),
        "logIndex": hexint(log_index),
        "removed": False,
    }


LOG_JSON_OVERHEAD = 400
"""Bytes of a log's JSON besides its topics and data (the hashes, numbers and keys):
enough to bound a response's size without encoding it."""
TOPIC_JSON_BYTES = 70


def log_json_size(log: Log) -> int:
    """An upper estimate of `log_json`'s encoded length."""
    return LOG_JSON_OVERHEAD + TOPIC_JSON_BYTES * len(log.topics) + 2 * len(log.data)


def logs_json(receipt: Receipt, tx: Transaction, header: Header, tx_index: int, first_log_index: int) -> list[dict]:
    return [log_json(log, tx.hash, header, tx_index, first_log_index + offset)
            for offset, log in enumerate(receipt.logs)]


def receipt_json(receipt: Receipt, tx: Transaction, header: Header, tx_index: int, first_log_index: int) -> dict:
    return {
        "type": hexint(receipt.tx_type),
        "transactionHash": hexbytes(tx.hash),
        "transactionIndex": hexint(tx_index),
        "blockHash": hexbytes(header.hash),
        "blockNumber": hexint(header.number),
        "from": address(tx.sender),
        "to": address(tx.to),
        "cumulativeGasUsed": hexint(receipt.cumulative_gas_used),
        "gasUsed": hexint(receipt.gas_used),
        "effectiveGasPrice": hexint(receipt.effective_gas_price),
        "contractAddress": None,
        "logs": logs_json(receipt, tx, header, tx_index, first_log_index),
        "logsBloom": hexbytes(receipt.bloom),
        "status": "0x1" if receipt.succeeded else "0x0",
    }


def block_size(header: Header, body: bytes) -> int:
    return len(header.encode()) + len(body)

