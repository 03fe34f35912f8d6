"""Load with a history (Jepsen's habit): signed transfers between devnet accounts and, with
`load.market`, market calls (calls.py), every operation written as a JSON line the checker reads
afterwards.

    {"op": "submit",  "t": …, "tx": id, "kind": k, "sender": addr, "to": addr, "nonce": n, "value": v, "node": i}
    {"op": "ack",     "t": …, "tx": id, "hash": "0x…"}                        the node took it
    {"op": "fail",    "t": …, "tx": id, "error": "…", "definite": bool}       refused (definite) or unknown
    {"op": "receipt", "t": …, "tx": id, "hash": …, "block": n, "blockHash": …, "index": k, "status": s, "node": i}

A sender sends through node (sender mod live nodes); after any failure it re-reads its nonce from a
live node before it sends again, so an unknown outcome (a node killed with the transaction in its
pool) never makes it skip or reuse a nonce blindly. Receipts are polled on a live node for every
acknowledged transaction until seen. Rates are bounded and the generator stops by itself."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

from eth_account import Account

from cli.testnet.calls import Workload
from market.agents.meter_driver import Rpc, RpcError

GAS_PRICE = 2 * 10**9
"""Above the devnet's base fee at any load this harness makes."""
DEFINITE = ("nonce too low", "invalid", "insufficient funds", "exceeds", "underpriced")
"""Refusals that say the node did not (and will not) take the transaction."""


class History:
    """The JSON-lines history file, written by several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "w")
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def write(self, op: str, **fields) -> None:
        line = json.dumps({"op": op, "t": round(time.monotonic() - self._started, 3), **fields})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Load:
    def __init__(self, work: Workload, chain_id: int, rpcs: Callable[[], list[tuple[int, Rpc]]], rate: float,
                 history: History) -> None:
        """`work` says who sends what next; `rpcs()`: the (index, client) of the nodes up now."""
        self.work = work
        self.chain_id = chain_id
        self.rpcs = rpcs
        self.rate = rate
        self.history = history
        self.nonces: dict[str, int | None] = {a.address: None for a in work.accounts}
        self.pending: dict[int, str] = {}
        """tx id → hash, without a receipt yet: acknowledged, or failed with an unknown outcome."""
        self.unknown: set[int] = set()
        """The ids in `pending` that were never acknowledged: looked for, not waited for."""
        self.counts = {"submitted": 0, "acknowledged": 0, "failed": 0, "receipts": 0}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next_id = 0

    def run(self, seconds: float) -> None:
        """Send for `seconds`, polling receipts beside it, then keep polling a little for the last ones."""
        poller = threading.Thread(target=self._poll_receipts, name="receipts", daemon=True)
        poller.start()
        interval = 1.0 / self.rate if self.rate else None
        deadline = time.monotonic() + seconds
        next_send = time.monotonic()
        while time.monotonic() < deadline and interval is not None:
            self._send(*self.work.next())
            next_send += interval
            time.sleep(max(0.0, min(next_send, deadline) - time.monotonic()))
        if interval is None:
            time.sleep(max(0.0, deadline - time.monotonic()))

    def settle(self, seconds: float) -> None:
        """Wait up to `seconds` for the receipts of what was acknowledged, then stop polling. A
        send with an unknown outcome is usually a transaction only a killed node had, replaced
        since at its nonce: its receipt never comes, and waiting for it would only add the bound."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if set(self.pending) <= self.unknown:
                    break
            time.sleep(0.3)
        self._stop.set()

    def _send(self, account, call) -> None:
        live = self.rpcs()
        if not live:
            self.work.requeue(account, call)
            return
        tx_id = self._next_id
        self._next_id += 1
        index, rpc = live[tx_id % len(live)]
        sender = account.address
        try:
            if self.nonces[sender] is None:
                self.nonces[sender] = int(rpc("eth_getTransactionCount", sender, "pending"), 16)
        except RpcError:
            self.work.requeue(account, call)
            return
        nonce = self.nonces[sender]
        raw = Account.sign_transaction({"chainId": self.chain_id, "nonce": nonce, "to": call.to, "value": call.value,
                                        "data": call.data, "gas": call.gas, "gasPrice": GAS_PRICE},
                                       account.key).raw_transaction
        self.history.write("submit", tx=tx_id, kind=call.kind, sender=sender, to=call.to, nonce=nonce,
                           value=call.value, node=index)
        self.counts["submitted"] += 1
        try:
            tx_hash = rpc("eth_sendRawTransaction", "0x" + raw.hex())
        except RpcError as error:
            text = str(error)
            definite = any(reason in text for reason in DEFINITE)
            self.history.write("fail", tx=tx_id, error=text[:300], definite=definite)
            self.counts["failed"] += 1
            self.nonces[sender] = None  # read it again from a live node before the next send
            if definite:
                self.work.requeue(account, call)
            else:
                with self._lock:
                    self.pending[tx_id] = "0x" + _hash_of(raw).hex()  # it may still land: look for it
                    self.unknown.add(tx_id)
            return
        self.nonces[sender] = nonce + 1
        self.history.write("ack", tx=tx_id, hash=tx_hash)
        self.counts["acknowledged"] += 1
        with self._lock:
            self.pending[tx_id] = tx_hash

    def _poll_receipts(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                waiting = list(self.pending.items())[:200]
            live = self.rpcs()
            if waiting and live:
                index, rpc = live[0]
                try:
                    replies = rpc.batch([("eth_getTransactionReceipt", [h]) for _, h in waiting])
                except RpcError:
                    replies = []
                for (tx_id, tx_hash), reply in zip(waiting, replies):
                    receipt = reply.get("result")
                    if receipt:
                        self.history.write("receipt", tx=tx_id, hash=tx_hash, block=int(receipt["blockNumber"], 16),
                                           blockHash=receipt["blockHash"], index=int(receipt["transactionIndex"], 16),
                                           status=int(receipt["status"], 16), node=index)
                        self.counts["receipts"] += 1
                        with self._lock:
                            self.pending.pop(tx_id, None)
            self._stop.wait(0.5)


def _hash_of(raw: bytes) -> bytes:
    from eth_utils import keccak

    return keccak(raw)
