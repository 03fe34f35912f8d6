"""The eth_ methods wallets and dApps use. Each method parses its arguments
with `node.rpc.params`, reads the chain or submits to the mempool, and returns
JSON in go-ethereum's shapes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from eth_bloom import BloomFilter

from node.chain import Chain
from node.history import HistoricalStates, HistoryUnavailable
from node.intake import TransactionIntake
from node.rpc import format as fmt
from node.rpc import params
from node.rpc.budget import check_budget
from node.rpc.errors import EXECUTION_REVERTED, SERVER_ERROR, RpcError, invalid_params
from node.rpc.params import LogFilter
from vm import codec, gas
from vm.blocks import Header, Log
from vm.constants import HISTORY_BLOCKS
from vm.environment import BlockEnvironment
from vm.gas import next_base_fee
from vm.native.registry import REGISTRY
from vm.pipeline import system_transaction_hash
from vm.state import State
from vm.transactions import InvalidTransaction
from vm.transition import CallResult, TransactionRejected, execute_message
from vm.types import ZERO_ADDRESS

GWEI = 10**9
DEFAULT_TIP = GWEI
"""Suggested tip when recent blocks carry no transactions."""
TIP_SAMPLE_BLOCKS = 20
"""Blocks go-ethereum's gas price oracle samples (`--gpo.blocks` is 20 for full nodes)."""
FEE_HISTORY_MAX_BLOCKS = HISTORY_BLOCKS
ESTIMATE_TOLERANCE = (15, 1000)
"""eth_estimateGas stops searching when the bounds are within 1.5 % (geth's default)."""
CALL_STIPEND = 2_300
"""Added to the gas used before the first guess at an estimate, as geth does."""
"""go-ethereum's `maxBlockHistory`/`maxHeaderHistory` for eth_feeHistory."""
FEE_HISTORY_MAX_PERCENTILES = 100
"""go-ethereum's `maxQueryLimit`: each percentile is computed for every block returned."""
LOGS_MAX_BLOCK_RANGE = 10_000
"""Blocks one log query may span (bor's and newer go-ethereum's `--rpc.rangelimit`; Besu's
`--rpc-max-logs-range` defaults to 5,000)."""
LOGS_MAX_RESULTS = 10_000
"""Logs one answer may carry: the bound hosted providers (Infura, Alchemy) put on eth_getLogs."""
LOGS_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
"""Estimated JSON bytes of one log answer, so a few logs with huge data cannot make a
response (and its Python objects) of hundreds of megabytes; go-ethereum bounds the whole
response with `--rpc.batch-response-max-size` (25 MB)."""


class EthApi:
    def __init__(self, chain: Chain, intake: TransactionIntake, accounts: list,
                 sync_progress: Callable[[], tuple[int, int, int] | None] = lambda: None) -> None:
        self.chain = chain
        self.intake = intake
        self.mempool = intake.mempool
        self.accounts = accounts
        self.sync_progress = sync_progress
        self.history = HistoricalStates(chain)
        self._tip: tuple[bytes, int] | None = None
        """(head hash, suggested tip): the oracle's answer until the head moves."""

    # -- helpers ------------------------------------------------------------
    def _header(self, block) -> Header | None:
        return self.resolve(params.block_id(block))

    def resolve(self, tag) -> Header | None:
        """The header a parsed block id (tag, number or hash) names."""
        if isinstance(tag, bytes):
            return self.chain.header_by_hash(tag)
        if tag in ("latest", "pending", "safe", "finalized"):
            return self.chain.head
        if tag == "earliest":
            return self.chain.header_by_number(0)
        return self.chain.header_by_number(tag)

    def _state(self, block) -> State:
        header = self._header(block)
        if header is None:
            raise RpcError(SERVER_ERROR, "header not found")
        if self.chain.store.canonical_hash(header.number) != header.hash:
            raise RpcError(SERVER_ERROR, f"state of non-canonical block 0x{header.hash.hex()} is not kept")
        try:
            return self.history.state_at(header.number)
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
        """The 60th percentile of tips paid in the last 20 blocks, as go-ethereum's oracle does;
        computed once per head, as go-ethereum caches it, since wallets ask before every send."""
        head = self.chain.head
        if self._tip is None or self._tip[0] != head.hash:
            tips = []
            for number in range(max(head.number - TIP_SAMPLE_BLOCKS + 1, 1), head.number + 1):
                header = self.chain.header_by_number(number)
                tips.extend(tx.effective_tip(header.base_fee) for tx in self.chain.transactions(header.hash))
            self._tip = (head.hash, max(sorted(tips)[(len(tips) - 1) * 60 // 100], 1) if tips else DEFAULT_TIP)
        return self._tip[1]

    def eth_feeHistory(self, block_count, newest_block, reward_percentiles=None) -> dict:
        count = (block_count if isinstance(block_count, int) and not isinstance(block_count, bool)
                 else params.quantity(block_count, "blockCount", bits=64))
        if not 1 <= count <= FEE_HISTORY_MAX_BLOCKS:
            raise invalid_params(f"blockCount must be between 1 and {FEE_HISTORY_MAX_BLOCKS}")
        newest = self._header(newest_block)
        if newest is None:
            raise RpcError(SERVER_ERROR, "header not found")
        percentiles = reward_percentiles or []
        if not isinstance(percentiles, list) or len(percentiles) > FEE_HISTORY_MAX_PERCENTILES:
            raise invalid_params(f"rewardPercentiles must be a list of at most {FEE_HISTORY_MAX_PERCENTILES} numbers")
        if any(isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 100 for p in percentiles) \
                or percentiles != sorted(percentiles):
            raise invalid_params("rewardPercentiles must be increasing numbers in [0, 100]")
        oldest = max(newest.number - count + 1, 0)
        base_fees, ratios, rewards = [], [], []
        for number in range(oldest, newest.number + 1):
            check_budget()
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
    def _prepare_call(self, call_object, block, allow_unregistered: bool) -> "_Call":
        call = params.transaction_call(call_object)
        state = self._state(block)
        env = self._pending_env()
        sender = call["from"] or ZERO_ADDRESS
        if call["to"] is None:
            raise RpcError(SERVER_ERROR, "contract creation is not supported: gridnode runs native contracts only")
        if not allow_unregistered and call["from"] is not None and REGISTRY.role_at(state, sender) == 0:
            raise RpcError(SERVER_ERROR, f"sender not registered: {sender.to_checksum()}")
        intrinsic = gas.intrinsic_gas(call["data"])
        gas_cap = call["gas"] if call["gas"] is not None else env.gas_limit
        if gas_cap < intrinsic:
            raise RpcError(SERVER_ERROR, f"intrinsic gas too low: have {gas_cap}, want {intrinsic}")
        if state.get_balance(sender) < call["value"]:
            raise RpcError(SERVER_ERROR, "insufficient funds for gas * price + value")

        def execute(limit: int) -> CallResult:
            snapshot = state.snapshot()
            result = execute_message(state, env, self.chain.contracts, sender, call["to"], call["value"],
                                     call["data"], limit - intrinsic)
            state.revert(snapshot)
            return result

        return _Call(execute, intrinsic, gas_cap)

    @staticmethod
    def _succeeded(result: CallResult) -> CallResult:
        if not result.succeeded:
            data = fmt.hexbytes(result.output) if result.output else None
            raise RpcError(EXECUTION_REVERTED if data else SERVER_ERROR, result.error, data)
        return result

    def eth_call(self, call_object, block="latest") -> str:
        call = self._prepare_call(call_object, block, allow_unregistered=True)
        return fmt.hexbytes(self._succeeded(call.execute(call.cap)).output)

    def eth_estimateGas(self, call_object, block="pending") -> str:
        """The lowest gas limit that succeeds, within ESTIMATE_TOLERANCE, searched for as geth
        does: the gas used is not enough when the call passes gas to another contract, which
        keeps back 1/64 of what is left at each call (EIP-150)."""
        call = self._prepare_call(call_object, block, allow_unregistered=False)
        used = call.intrinsic + self._succeeded(call.execute(call.cap)).gas_used

        def succeeds(limit: int) -> bool:
            check_budget()
            return call.execute(limit).succeeded

        low, high = used - 1, min(call.cap, (used + CALL_STIPEND) * 64 // 63)
        if not succeeds(high):
            low, high = high, call.cap
        while high - low > 1 and (high - low) * ESTIMATE_TOLERANCE[1] > high * ESTIMATE_TOLERANCE[0]:
            middle = (low + high) // 2
            if succeeds(middle):
                high = middle
            else:
                low = middle
        return fmt.hexint(high)

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
                                 fmt.block_size(header, codec.encode([tx.raw for tx in txs])))
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
        return self.logs(params.log_filter(log_filter))

    def logs(self, query: LogFilter) -> list[dict]:
        """Every log a parsed query matches: one block by hash, or a bounded range of canonical blocks."""
        if query.block_hash is not None:
            header = self.chain.header_by_hash(query.block_hash)
            if header is None:
                raise RpcError(SERVER_ERROR, "unknown block")
            return self.logs_in([header], query)
        first, last = self.resolve(query.from_block), self.resolve(query.to_block)
        if first is None or last is None:
            return []
        return self.logs_in(self.canonical_headers(first.number, last.number), query)

    def canonical_headers(self, first: int, last: int):
        """Canonical headers first..last, refusing a range wider than LOGS_MAX_BLOCK_RANGE."""
        if last - first >= LOGS_MAX_BLOCK_RANGE:
            raise RpcError(SERVER_ERROR, f"block range too large: at most {LOGS_MAX_BLOCK_RANGE} blocks")
        return (self.chain.header_by_number(n) for n in range(first, last + 1))

    def logs_in(self, headers, query: LogFilter) -> list[dict]:
        """Every log of these blocks that matches, blooms first (shared with the filters).
        A block stored but never executed (a side block) has no receipts, hence no logs to report."""
        matcher = _LogMatcher(query)
        found, size = [], 0
        for header in headers:
            check_budget()
            if not matcher.may_match(header.logs_bloom):
                continue
            receipts = self.chain.receipts(header.hash)
            if receipts is None:
                continue
            log_index = 0
            tx_hashes = self.chain.transaction_hashes(header.hash)
            for tx_index, receipt in enumerate(receipts):
                # past the transactions: the system receipt of end-of-block work (vm/pipeline.py)
                tx_hash = (tx_hashes[tx_index] if tx_index < len(tx_hashes)
                           else system_transaction_hash(header.hash))
                for log in receipt.logs:
                    if matcher.matches(log):
                        size += fmt.log_json_size(log)
                        if len(found) == LOGS_MAX_RESULTS or size > LOGS_MAX_RESPONSE_BYTES:
                            raise RpcError(SERVER_ERROR, f"query returned more than {LOGS_MAX_RESULTS} results "
                                                         f"or {LOGS_MAX_RESPONSE_BYTES} bytes: narrow the range")
                        found.append(fmt.log_json(log, tx_hash, header, tx_index, log_index))
                    log_index += 1
        return found


@dataclass(frozen=True)
class _Call:
    """A checked eth_call/eth_estimateGas request, runnable at any gas limit on its throwaway state."""

    execute: Callable[[int], CallResult]
    intrinsic: int
    cap: int


class _LogMatcher:
    """A query's tests on a block's bloom and on each log; the bloom bits of every
    address and topic are computed once per query, not once per block."""

    def __init__(self, query: LogFilter) -> None:
        self.addresses = query.addresses
        self.topics = query.topics
        self._bloom_groups = [[_bloom_bits(item) for item in group]
                              for group in (query.addresses, *query.topics) if group is not None]

    def may_match(self, bloom: bytes) -> bool:
        value = int.from_bytes(bloom, "big")
        return all(any(value & bits == bits for bits in group) for group in self._bloom_groups)

    def matches(self, log: Log) -> bool:
        if self.addresses is not None and log.address not in self.addresses:
            return False
        if len(self.topics) > len(log.topics):
            return False
        return all(options is None or log.topics[i] in options for i, options in enumerate(self.topics))


def _bloom_bits(item: bytes) -> int:
    """The three bloom bits an address or topic sets, as one mask."""
    return int(BloomFilter.from_iterable([item]))
