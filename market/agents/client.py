"""What every agent shares: a wallet on a node (web3.py over JSON-RPC), the market contracts
as `grid_contracts` lists them, signed transactions with readable failures, and the loop that
steps an agent along the chain's clock, reporting what it does as events."""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Callable

from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from market.agents.schedule import HourlyBatch

Reporter = Callable[[dict], None]
GAS_HEADROOM = 25_000


class AgentError(Exception):
    """A failure the agent reports and, where it makes sense, retries: a revert reason, an
    unreachable node, a contract missing from the chain."""


def revert_reason(exc: Exception) -> str:
    """'offers: not expired' out of web3's 'execution reverted: offers: not expired'."""
    text = getattr(exc, "message", None) or str(exc)
    return text.split("execution reverted: ", 1)[-1]


class MarketClient:
    """One account's wallet on a gridnode: calls views, signs and sends transactions."""

    def __init__(self, rpc_url: str, private_key: bytes | str, timeout: float = 30.0) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.account = Account.from_key(private_key)
        self.address = self.account.address
        try:
            reply = self.w3.provider.make_request("grid_contracts", [])
            self.chain_id = self.w3.eth.chain_id
        except (OSError, ValueError, Web3RPCError) as exc:
            raise AgentError(f"cannot reach the node at {rpc_url}: {exc}") from None
        if "result" not in reply:
            raise AgentError(f"grid_contracts failed at {rpc_url}: {reply.get('error')}")
        self.abis = {name: info["abi"] for name, info in reply["result"].items()}
        self.contracts = {name: self.w3.eth.contract(address=info["address"], abi=info["abi"])
                          for name, info in reply["result"].items() if info["address"] is not None}
        self.receipt_timeout = timeout

    def contract(self, name: str):
        """A placed contract by name (`Offers`), or an instance as "Kind@0xaddress"
        (`EnglishAuction@0x…`): an instance-only kind's ABI comes from grid_contracts too."""
        kind, _, address = name.partition("@")
        if address:
            if kind not in self.abis:
                raise AgentError(f"this chain has no {kind} kind (grid_contracts lists {sorted(self.abis)})")
            return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=self.abis[kind])
        if name not in self.contracts:
            raise AgentError(f"this chain has no {name} contract (grid_contracts lists {sorted(self.contracts)})")
        return self.contracts[name]

    def now(self) -> int:
        """The chain's clock: the latest block's timestamp."""
        return self.w3.eth.get_block("latest")["timestamp"]

    def view(self, name: str, function: str, *args):
        try:
            return getattr(self.contract(name).functions, function)(*args).call()
        except ContractLogicError as exc:
            raise AgentError(f"{name}.{function}: {revert_reason(exc)}") from None

    def send(self, name: str, function: str, *args, value: int = 0):
        """Sign and send a call as this account (with `value` elecoin wei for a payable
        function), wait for its receipt; AgentError with the revert reason if it would fail or did."""
        call = getattr(self.contract(name).functions, function)(*args)
        try:
            gas = call.estimate_gas({"from": self.address, "value": value})
        except ContractLogicError as exc:
            raise AgentError(f"{name}.{function}: {revert_reason(exc)}") from None
        # Headroom, as wallets add: a transaction mined after another one may write a storage word
        # that was empty when it was estimated (20,000 gas instead of 2,900), and a call into another
        # contract passes on only 63/64 of the gas left. Unused gas is not charged.
        gas = gas * 3 // 2 + GAS_HEADROOM
        base_fee = self.w3.eth.get_block("latest")["baseFeePerGas"]
        tip = self.w3.eth.max_priority_fee
        tx = call.build_transaction({
            "from": self.address, "chainId": self.chain_id, "gas": gas, "value": value,
            "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
            "maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip})
        signed = self.account.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout,
                                                               poll_latency=0.1)
        except Web3RPCError as exc:
            raise AgentError(f"{name}.{function}: {exc}") from None
        except TimeExhausted:
            raise AgentError(f"{name}.{function}: no receipt after {self.receipt_timeout:.0f} s") from None
        if receipt["status"] != 1:
            raise AgentError(f"{name}.{function}: {self._mined_revert_reason(call, value, receipt)} "
                             f"(block {receipt['blockNumber']})")
        return receipt

    def _mined_revert_reason(self, call, value: int, receipt) -> str:
        """Why a mined transaction reverted: the call replayed on the state before its block
        (what it met there may have changed within the block, e.g. another bid came first)."""
        try:
            call.call({"from": self.address, "value": value}, block_identifier=receipt["blockNumber"] - 1)
        except ContractLogicError as exc:
            return revert_reason(exc)
        except (OSError, ValueError, Web3RPCError):
            return "reverted"
        return "reverted (the state it met changed within its block)"

    def event(self, receipt, name: str, event: str) -> dict:
        """The arguments of the first `event` that contract `name` logged in a receipt."""
        contract = self.contract(name)
        abi_event = getattr(contract.events, event)()
        for log in receipt["logs"]:
            if log["address"] == contract.address and "0x" + bytes(log["topics"][0]).hex() == abi_event.topic:
                return dict(abi_event.process_log(log)["args"])
        raise AgentError(f"{name}.{event} missing from transaction 0x{bytes(receipt['transactionHash']).hex()}")


def json_reporter(stream=sys.stdout) -> Reporter:
    def report(event: dict) -> None:
        stream.write(json.dumps(event, sort_keys=True) + "\n")
        stream.flush()
    return report


def text_reporter(stream=sys.stdout) -> Reporter:
    def report(event: dict) -> None:
        details = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("agent", "event", "time"))
        stream.write(f"{event['agent']}: {event['event']} {details}\n")
        stream.flush()
    return report


class Agent:
    """Base of the four agents: `step(timestamp)` does one round of work at the chain's time;
    `run` steps until `hours` market hours have passed (or for ever), or `stop` is set."""

    kind = "agent"

    def __init__(self, client: MarketClient, schedule: HourlyBatch, report: Reporter) -> None:
        self.client = client
        self.schedule = schedule
        self._report = report
        self.done = False

    def report(self, event: str, **fields) -> None:
        self._report({"agent": self.kind, "event": event, "account": self.client.address,
                      "time": round(time.time(), 3), **fields})

    def step(self, timestamp: int) -> None:
        raise NotImplementedError

    def try_send(self, name: str, function: str, *args) -> bool:
        """Send a call another agent may have made first (settling, refunding, cancelling): a
        revert then is no failure, just reported as `skipped`."""
        try:
            self.client.send(name, function, *args)
        except AgentError as exc:
            self.report("skipped", call=f"{name}.{function}", args=list(args), reason=str(exc))
            return False
        return True

    def run(self, hours: int | None = None, poll: float = 0.5, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        start_hour = self.schedule.hour_of(self.client.now())
        self.report("started", hour=start_hour, timeScale=self.schedule.time_scale)
        while not stop.is_set() and not self.done:
            try:
                timestamp = self.client.now()
                if hours is not None and self.schedule.hour_of(timestamp) >= start_hour + hours:
                    break
                self.step(timestamp)
            except AgentError as exc:
                self.report("error", reason=str(exc))
            except (OSError, ValueError, Web3RPCError) as exc:
                self.report("error", reason=f"node unreachable or refused: {exc}")
            stop.wait(poll)
        self.report("stopped")
