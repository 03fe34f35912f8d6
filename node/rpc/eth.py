"""The eth_ methods wallets and dApps use. Each method parses its arguments
with `node.rpc.params`, reads the chain or submits to the mempool, and returns
JSON in go-ethereum's shapes."""
from __future__ import annotations

from typing import Callable

import rlp
from eth_bloom import BloomFilter

from node.chain import Chain
from node.history import HistoryUnavailable, state_at
from node.intake import TransactionIntake
from node.rpc import format as fmt
from node.rpc import params
from node.rpc.errors import EXECUTION_REVERTED, SERVER_ERROR, RpcError, invalid_params
from vm import gas
from vm.blocks import Header
from vm.gas import next_base_fee
from vm.native.registry import REGISTRY
from vm.state import State
from vm.transactions import InvalidTransaction
from vm.transition import BlockEnvironment, TransactionRejected, execute_message
from vm.types import ZERO_ADDRESS

GWEI = 10**9
DEFAULT_TIP = GWEI
"""Suggested tip when recent blocks carry no transactions."""
FEE_HISTORY_MAX_BLOCKS = 1024
LOGS_MAX_BLOCK_RANGE = 10_000
LOGS_MAX_RESULTS = 10_000


class EthApi:
    def __init__(self, chain: Chain, intake: TransactionIntake, accounts: list,
                 sync_progress: Callable[[], tuple[int, int, int] | None] = lambda: None) -> None:
        self.chain = chain
        self.intake = intake
        self.mempool = intake.mempool
        self.accounts = accounts
        self.sync_progress = sync_progress

    # -- helpers ------------------------------------------------------------
    def _header(self, block) -> Header | None:
        tag = params.block_id(block)
        head = self.chain.head
        if isinstance(tag, bytes):
            return self.chain.header_by_hash(tag)
        if tag in ("latest", "pending", "safe", "finalized"):
            return head
        if tag == "earliest":
            return self.chain.header_by_number(0)
        return self.chain.header_by_number(tag)

    def _state(self, block) -> State:
        header = self._header(block)
        if header is None:
            raise RpcError(SERVER_ERROR, "header not found")
        try:
            return state_at(self.chain, header.number)
        except HistoryUnavailable as exc:
            raise RpcError(SERVER_ERROR, str(exc)) from None

    def _next_base_fee(self) -> int:
        return self.intake.next_base_fee()

    def _pending_env(self) -> BlockEnvironment:
        """The environment a call sees: the next block on top of the head."""
        head = self.chain.head
        return BlockEnvironment(self.chain.chain_id, head.number + 1, head.timestamp + 1, head.producer,
                                self._next_base_fee(), head.gas_limit)

    # -- chain info ----------------------------------------------------------
    def eth_chainId(self) -> str:
        return fmt.hexint(self.chain.chain_id)

    def eth_blockNumber(self) -> str:
        return fmt.hexint(self.chain.head.number)

    def eth_syncing(self):
        progress = self.sync_progress()
        if progress is None:
            return False
        starting, current, highest = progress
        return {"startingBlock": fmt.hexint(starting), "currentBlock": fmt.hexint(current),
                "highestBlock": fmt.hexint(highest)}

    def eth_accounts(self) -> list[str]:
        return [account.to_checksum() for account in self.accounts]

    # -- fees ------------------------------------------------------------
    def eth_gasPrice(self) -> str:
        return fmt.hexint(self._next_base_fee() + self._suggested_tip())

    def eth_maxPriorityFeePerGas(self) -> str:
        return fmt.hexint(self._suggested_tip())

    def _suggested_tip(self) -> int:
        """The 60th percentile of tips paid in the last 20 blocks, as go-ethereum's oracle does."""
        tips = []
        head = self.chain.head
        for number in range(max(head.number - 19, 1), head.number + 1):
            header = self.chain.header_by_number(number)
            tips.extend(tx.effective_tip(header.base_fee) for tx in self.chain.transactions(header.hash))
        if not tips:
            return DEFAULT_TIP
        return max(sorted(tips)[(len(tips) - 1) * 60 // 100], 1)

    def eth_feeHistory(self, block_count, newest_block, reward_percentiles=None) -> dict:
        count = block_count if isinstance(block_count, int) else params.quantity(block_count, "blockCount")
        if not 1 <= count <= FEE_HISTORY_MAX_BLOCKS:
            raise invalid_params(f"blockCount must be between 1 and {FEE_HISTORY_MAX_BLOCKS}")
        newest = self._header(newest_block)
        if newest is None:
            raise RpcError(SERVER_ERROR, "header not found")
        percentiles = reward_percentiles or []
        if not isinstance(percentiles, list) or any(
                not isinstance(p, (int, float)) or not 0 <= p <= 100 for p in percentiles) or percentiles != sorted(percentiles):
            raise invalid_params("rewardPercentiles must be increasing numbers in [0, 100]")
        oldest = max(newest.number - count + 1, 0)
        base_fees, ratios, rewards = [], [], []
        for number in range(oldest, newest.number + 1):
            header = self.chain.header_by_number(number)
            base_fees.append(fmt.hexint(header.base_fee))
            ratios.append(header.gas_used / header.gas_limit)
            if percentiles:
                rewards.append([fmt.hexint(tip) for tip in self._tip_percentiles(header, percentiles)])
        base_fees.append(fmt.hexint(next_base_fee(newest.gas_limit, newest.gas_used, newest.base_fee,
                                                  self.chain.genesis.min_base_fee)))
        result = {"oldestBlock": fmt.hexint(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios}
        if percentiles:
            result["reward"] = rewards
        return result

    def _tip_percentiles(self, header: Header, percentiles: list) -> list[int]:
        """Tips at gas-weighted percentiles of the block, as EIP-1559's fee history defines them."""
        txs = self.chain.transactions(header.hash)
        if not txs:
            return [0] * len(percentiles)
        receipts = self.chain.receipts(header.hash)
        paid = sorted((tx.effective_tip(header.base_fee), receipt.gas_used) for tx, receipt in zip(txs, receipts))
        result, index, cumulative = [], 0, paid[0][1]
        for percentile in percentiles:
            threshold = header.gas_used * percentile / 100
            while cumulative < threshold and index < len(paid) - 1:
                index += 1
                cumulative += paid[index][1]
            result.append(paid[index][0])
        return result

    # -- state ------------------------------------------------------------
    def eth_getBalance(self, account, block="latest") -> str:
        return fmt.hexint(self._state(block).get_balance(params.address(account)))

    def eth_getTransactionCount(self, account, block="latest") -> str:
        address = params.address(account)
        nonce = self._state(block).get_account(address).nonce
        if block == "pending":
            nonce = self.mempool.pending_nonce(address, nonce)
        return fmt.hexint(nonce)

    def eth_getCode(self, account, block="latest") -> str:
        return fmt.hexbytes(self._state(block).get_code(params.address(account)))

    # -- calls --------------------------------------------------------------
    def _run_call(self, call_object, block, allow_unregistered: bool):
        call = params.transaction_call(call_object)
        state = self._state(block)
        env = self._pending_env()
        sender = call["from"] or ZERO_ADDRESS
        if call["to"] is None:
            raise RpcError(SERVER_ERROR, "contract creation is not supported: gridnode runs native contracts only")
        if not allow_unregistered and call["from"] is not None and REGISTRY.role_of(state, sender) == 0:
            raise RpcError(SERVER_ERROR, f"sender not registered: {sender.to_checksum()}")
        intrinsic = gas.intrinsic_gas(call["data"])
        gas_cap = call["gas"] if call["gas"] is not None else env.gas_limit
        if gas_cap < intrinsic:
            raise RpcError(SERVER_ERROR, f"intrinsic gas too low: have {gas_cap}, want {intrinsic}")
        if state.get_balance(sender) < call["value"]:
            raise RpcError(SERVER_ERROR, "insufficient funds for gas * price + value")
        result = execute_message(state, env, sender, call["to"], call["value"], call["data"], gas_cap - intrinsic)
        if not result.succeeded:
            data = fmt.hexbytes(result.output) if result.output else None
            raise RpcError(EXECUTION_REVERTED if data else SERVER_ERROR, result.error, data)
        return result, intrinsic

    def eth_call(self, call_object, block="latest") -> str:
        result, _ = self._run_call(call_object, block, allow_unregistered=True)
        return fmt.hexbytes(result.output)

    def eth_estimateGas(self, call_object, block="pending") -> str:
        result, intrinsic = self._run_call(call_object, block, allow_unregistered=False)
        return fmt.hexint(intrinsic + result.gas_used)

    # -- transactions ------------------------------------------------------
    def eth_sendRawTransaction(self, raw) -> str:
        try:
            tx, _ = self.intake.submit(params.data(raw, "transaction"))
        except (InvalidTransaction, TransactionRejected) as exc:
            raise RpcError(SERVER_ERROR, str(exc)) from None
        return fmt.hexbytes(tx.hash)

    def eth_getTransactionByHash(self, tx_hash) -> dict | None:
        tx_hash = params.hash32(tx_hash, "transaction hash")
        location = self.chain.transaction_location(tx_hash)
        if location is not None:
            header, index = location
            return fmt.transaction_json(self.chain.transactions(header.hash)[index], header, index)
        pending = self.mempool.get(tx_hash)
        return fmt.transaction_json(pending) if pending is not None else None

    def eth_getTransactionReceipt(self, tx_hash) -> dict | None:
        location = self.chain.transaction_location(params.hash32(tx_hash, "transaction hash"))
        if location is None:
            return None
        header, index = location
        receipts = self.chain.receipts(header.hash)
        first_log = sum(len(r.logs) for r in receipts[:index])
        tx = self.chain.transactions(header.hash)[index]
        return fmt.receipt_json(receipts[index], tx, header, index, first_log)

    # -- blocks ------------------------------------------------------------
    def _block_json(self, header: Header | None, full: bool) -> dict | None:
        if header is None:
            return None
        txs = self.chain.transactions(header.hash)
        result = fmt.header_json(header, self.chain.store.total_weight(header.hash),
                                 fmt.block_size(header, rlp.encode([tx.raw for tx in txs])))
        result["transactions"] = ([fmt.transaction_json(tx, header, i) for i, tx in enumerate(txs)] if full
                                  else [fmt.hexbytes(tx.hash) for tx in txs])
        return result

    def eth_getBlockByNumber(self, block, full=False) -> dict | None:
        return self._block_json(self._header(block), params.boolean(full, "fullTransactions"))

    def eth_getBlockByHash(self, block_hash, full=False) -> dict | None:
        return self._block_json(self.chain.header_by_hash(params.hash32(block_hash, "block hash")),
                                params.boolean(full, "fullTransactions"))

    def eth_getBlockTransactionCountByNumber(self, block) -> str | None:
        header = self._header(block)
        return fmt.hexint(len(self.chain.transactions(header.hash))) if header else None

    # -- logs --------------------------------------------------------------
    def eth_getLogs(self, log_filter) -> list[dict]:
        if not isinstance(log_filter, dict):
            raise invalid_params("filter object expected")
        addresses, topics = filter_criteria(log_filter)
        if "blockHash" in log_filter:
            if "fromBlock" in log_filter or "toBlock" in log_filter:
                raise invalid_params("blockHash cannot be combined with fromBlock/toBlock")
            header = self.chain.header_by_hash(params.hash32(log_filter["blockHash"], "blockHash"))
            if header is None:
                raise RpcError(SERVER_ERROR, "unknown block")
            headers = [header]
        else:
            first = self._header(log_filter.get("fromBlock", "latest"))
            last = self._header(log_filter.get("toBlock", "latest"))
            if first is None or last is None:
                return []
            if last.number - first.number >= LOGS_MAX_BLOCK_RANGE:
                raise RpcError(SERVER_ERROR, f"block range too large: at most {LOGS_MAX_BLOCK_RANGE} blocks")
            headers = (self.chain.header_by_number(n) for n in range(first.number, last.number + 1))
        return self.logs_in(headers, addresses, topics)

    def logs_in(self, headers, addresses, topics) -> list[dict]:
        """Every log of these blocks that matches, blooms first (shared with the filters)."""
        found = []
        for header in headers:
            if not _bloom_may_match(header.logs_bloom, addresses, topics):
                continue
            receipts = self.chain.receipts(header.hash)
            txs = self.chain.transactions(header.hash)
            log_index = 0
            for tx_index, (receipt, tx) in enumerate(zip(receipts, txs)):
                for entry in fmt.logs_json(receipt, tx, header, tx_index, log_index):
                    if _log_matches(entry, addresses, topics):
                        found.append(entry)
                log_index += len(receipt.logs)
            if len(found) > LOGS_MAX_RESULTS:
                raise RpcError(SERVER_ERROR, f"query returned more than {LOGS_MAX_RESULTS} results")
        return found


def filter_criteria(log_filter: dict) -> tuple[set[str] | None, list[set[str] | None]]:
    raw_addresses = log_filter.get("address")
    if raw_addresses is None:
        addresses = None
    else:
        items = raw_addresses if isinstance(raw_addresses, list) else [raw_addresses]
        addresses = {params.address(a, "address").to_checksum() for a in items}
    topics = []
    raw_topics = log_filter.get("topics") or []
    if not isinstance(raw_topics, list) or len(raw_topics) > 4:
        raise invalid_params("topics must be a list of at most 4 positions")
    for position in raw_topics:
        if position is None:
            topics.append(None)
        else:
            options = position if isinstance(position, list) else [position]
            topics.append({fmt.hexbytes(params.hash32(t, "topic")) for t in options})
    return addresses, topics


def _bloom_may_match(bloom: bytes, addresses, topics) -> bool:
    filter_ = BloomFilter(int.from_bytes(bloom, "big"))
    if addresses is not None and not any(bytes.fromhex(a[2:]) in filter_ for a in addresses):
        return False
    for options in topics:
        if options is not None and not any(bytes.fromhex(t[2:]) in filter_ for t in options):
            return False
    return True


def _log_matches(entry: dict, addresses, topics) -> bool:
    if addresses is not None and entry["address"] not in addresses:
        return False
    if len(topics) > len(entry["topics"]):
        return False
    return all(options is None or entry["topics"][i] in options for i, options in enumerate(topics))
