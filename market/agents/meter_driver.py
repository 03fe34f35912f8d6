"""The meter oracles of a live PoEG community: each slot, every prosumer's oracle posts that
slot's synthetic reading to Meters over JSON-RPC, as a real meter would.

The readings come from the coalition simulation's own generator (`random_community`, §3.4.4
profiles, already in Wh), drawn afresh per slot from (seed, slot), so a run is repeatable and
a slot's readings do not depend on which slots came before; the positions are the genesis'.
Transactions are signed here with locally counted nonces and sent as one JSON-RPC batch per
node, so fifty oracles post within a fraction of the slot."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import requests
from eth_account import Account
from eth_utils import keccak

from genesis.devnet import DevAccount
from market.contracts.addresses import METERS
from market.economics.community import Distribution, random_community

POST_READING = keccak(text="postReading(address,uint64,uint256,uint256,uint256)")[:4]
MAX_FEE = 10**10
TIP = 10**9
BATCH = 200
"""Calls per JSON-RPC batch (the node accepts 1,000)."""


class RpcError(RuntimeError):
    """A JSON-RPC error reply, or a node that cannot be reached."""


class Rpc:
    """A minimal JSON-RPC client: one call, or a batch whose replies keep their errors."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self.session = requests.Session()
        self._ids = itertools.count()

    def _post(self, payload):
        try:
            return self.session.post(self.url, json=payload, timeout=self.timeout).json()
        except (requests.RequestException, ValueError) as error:
            raise RpcError(f"{self.url}: {error}") from None

    def __call__(self, method: str, *params):
        reply = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)})
        if "error" in reply:
            raise RpcError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    def batch(self, calls: list[tuple[str, list]]) -> list[dict]:
        """Each call's reply ({"result": …} or {"error": …}), in the order of `calls`."""
        replies: list[dict] = []
        for start in range(0, len(calls), BATCH):
            chunk = calls[start:start + BATCH]
            ids = [next(self._ids) for _ in chunk]
            answer = self._post([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                                 for i, (m, p) in zip(ids, chunk)])
            if not isinstance(answer, list):
                raise RpcError(f"batch refused: {answer.get('error')}")
            by_id = {reply.get("id"): reply for reply in answer}
            replies.extend(by_id.get(i, {"error": {"message": "no reply"}}) for i in ids)
        return replies

    def results(self, calls: list[tuple[str, list]]) -> list:
        """Each call's result; RpcError on the first error."""
        out = []
        for (method, _), reply in zip(calls, self.batch(calls)):
            if "error" in reply:
                raise RpcError(f"{method}: {reply['error'].get('message')}")
            out.append(reply["result"])
        return out


@dataclass(frozen=True)
class Posted:
    """One reading sent: what, for whom, in which transaction."""

    prosumer: int
    slot: int
    generation_wh: int
    consumption_wh: int
    tx_hash: str


class MeterDriver:
    """The oracles of `pairs` (prosumer, oracle) posting each slot's readings."""

    def __init__(self, pairs: list[tuple[DevAccount, DevAccount]], rpc: Rpc, dist: Distribution, seed: int) -> None:
        self.pairs = pairs
        self.dist = dist
        self.seed = seed
        self.chain_id = int(rpc("eth_chainId"), 16)
        self.nonces = [int(n, 16) for n in rpc.results([("eth_getTransactionCount", ["0x" + o.address.hex(), "pending"])
                                                        for _, o in pairs])]
        probe = {"from": "0x" + pairs[0][1].address.hex(), "to": METERS.to_checksum(),
                 "data": "0x" + self._calldata(0, 0, 1, 1).hex()}
        self.gas = int(rpc("eth_estimateGas", probe), 16) * 3 // 2 + 25_000  # the client's headroom

    def readings(self, slot: int) -> list[tuple[int, int]]:
        """(generation, consumption) Wh of every prosumer in `slot`."""
        community = random_community(len(self.pairs), self.dist, np.random.default_rng([self.seed, slot]))
        return list(zip(community.production_wh, community.consumption_wh))

    def _calldata(self, index: int, slot: int, generation: int, consumption: int) -> bytes:
        words = (int.from_bytes(self.pairs[index][0].address, "big"), slot, generation, consumption, 0)
        return POST_READING + b"".join(w.to_bytes(32, "big") for w in words)

    def post(self, slot: int, rpcs: list[Rpc]) -> list[Posted]:
        """Sign every prosumer's reading for `slot` and send them, spread over `rpcs`; a node
        that refuses or is down has its share sent through the next one."""
        signed, posted = [], []
        for index, (generation, consumption) in enumerate(self.readings(slot)):
            oracle = self.pairs[index][1]
            tx = {"to": METERS.to_checksum(), "value": 0, "gas": self.gas, "chainId": self.chain_id,
                  "maxFeePerGas": MAX_FEE, "maxPriorityFeePerGas": TIP, "nonce": self.nonces[index],
                  "data": self._calldata(index, slot, generation, consumption)}
            raw = Account.sign_transaction(tx, oracle.private_key)
            self.nonces[index] += 1
            signed.append("0x" + bytes(raw.raw_transaction).hex())
            posted.append(Posted(index, slot, generation, consumption, "0x" + bytes(raw.hash).hex()))
        pending = list(range(len(signed)))
        for attempt in range(len(rpcs)):
            if not pending:
                break
            shares: dict[int, list[int]] = {}
            for k, index in enumerate(pending):
                shares.setdefault((k + attempt) % len(rpcs), []).append(index)
            pending = []
            for node, indices in shares.items():
                try:
                    replies = rpcs[node].batch([("eth_sendRawTransaction", [signed[i]]) for i in indices])
                except RpcError:
                    pending.extend(indices)
                    continue
                pending.extend(i for i, reply in zip(indices, replies)
                               if "error" in reply and "known" not in reply["error"].get("message", "").lower())
        if pending:
            raise RpcError(f"slot {slot}: no node took the readings of prosumers {pending}")
        return posted
