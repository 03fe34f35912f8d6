#!/usr/bin/env python3
"""Honest and hostile JSON-RPC load at once, for a bounded time, against a node on loopback.

Honest clients ask eth_blockNumber and eth_getBalance and send transfers signed
with the test mnemonic's keys; hostile ones send deep JSON, bracket floods,
huge eth_getLogs (thousands of addresses and topics, 10,000-block ranges),
1,000-call batches of full blocks, filter floods, oversized and 128 KiB
transactions, and historical state queries. Meanwhile block arrival is polled
and the node's memory sampled. It prints the honest requests served and their
p50/p95, hostile requests answered with an error or served, the longest gap
between blocks (as polled and from block timestamps), the node's peak RSS and
its growth, whether the node stayed up, and the bar: node up, longest block gap
<= 2 block intervals, RSS growth < 100 MB.

    python bench/hostile_rpc.py --rpc http://127.0.0.1:8545 --seconds 30 --pid $(pgrep -f 'gridnode start')
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import json
import multiprocessing
import secrets
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import aiohttp
from eth_account import Account
from eth_utils import to_checksum_address

DEV_KEYS = [  # the test mnemonic's first accounts, funded and registered on a devnet (tests/helpers.py)
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
]
HONEST_SENDERS = (1, 2)
"""Dev accounts that send honest transfers."""
BIG_SENDER = 3
"""The dev account that sends registered 128 KiB transactions."""
MAX_GAP_INTERVALS = 2
MAX_RSS_GROWTH = 100 * 1024 * 1024
POLL_INTERVAL = 0.1
TX_DATA_LIMIT = 128 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="node JSON-RPC URL (loopback only)")
    parser.add_argument("--seconds", type=float, default=30, help="how long the load runs (default 30)")
    parser.add_argument("--pid", type=int, help="node process id, to sample its resident memory")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    host = urlparse(args.rpc).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        parser.error(f"{host} is not a loopback address: this load is only ever sent to this machine")
    return args


@dataclass
class Tally:
    served: int = 0
    errors: int = 0
    failed: int = 0
    """No JSON-RPC answer at all: a dropped connection, an HTTP error without a body, a timeout."""
    latencies: list[float] = field(default_factory=list)

    def record(self, answer: bytes | None, seconds: float) -> None:
        """Classify by the bytes alone: parsing a 25 MB answer would stall this client, not the node."""
        if not answer or answer[:1] not in b"[{":
            self.failed += 1
        elif b'"error":' in answer:
            self.errors += 1
        else:
            self.served += 1
            self.latencies.append(seconds)

    def summary(self) -> dict:
        ordered = sorted(self.latencies)
        percentile = (lambda q: round(ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000, 1)
                      if ordered else None)
        return {"served": self.served, "errors": self.errors, "failed": self.failed,
                "p50_ms": percentile(0.5), "p95_ms": percentile(0.95)}


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url, self.ids = session, url, itertools.count(1)

    def request(self, method: str, *params) -> dict:
        return {"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": list(params)}

    async def post(self, body) -> tuple[bytes | None, float]:
        """(the answer's bytes or None, seconds it took)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        started = time.monotonic()
        try:
            async with self.session.post(self.url, data=data, headers={"Content-Type": "application/json"}) as reply:
                answer = await reply.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            answer = None
        return answer, time.monotonic() - started

    async def result(self, method: str, *params):
        answer, _ = await self.post(self.request(method, *params))
        try:
            return json.loads(answer)["result"]
        except (TypeError, ValueError, KeyError):
            raise RuntimeError(f"{method}: {answer[:200] if answer else answer}") from None


@dataclass(frozen=True)
class Chain:
    """What the load needs to know of the node before it starts."""
    chain_id: int
    interval: int
    first_block: int
    nonces: dict


class Load:
    """One side of the mix (honest or hostile): its tally and one coroutine per kind of client."""

    def __init__(self, client: Client, chain: Chain, until: float) -> None:
        self.client, self.chain, self.until = client, chain, until
        self.tally = Tally()
        self.head = chain.first_block
        self.nonces = dict(chain.nonces)

    def running(self) -> bool:
        return time.monotonic() < self.until

    def signed(self, key: str, data: bytes = b"", nonce: int | None = None) -> str:
        account = Account.from_key(key)
        if nonce is None:
            nonce = self.nonces[account.address]
            self.nonces[account.address] += 1
        tx = {"to": to_checksum_address("0x" + secrets.token_hex(20)), "value": 1, "data": data,
              "gas": 21_000 + 16 * len(data), "chainId": self.chain.chain_id, "nonce": nonce,
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
        return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()

    async def follow_head(self) -> list[tuple[float, int]]:
        """Poll the head until the load ends: (time, number) each time it moved."""
        seen = [(time.monotonic(), self.head)]
        while self.running():
            try:
                number = int(await self.client.result("eth_blockNumber"), 16)
            except RuntimeError:
                number = self.head
            if number != self.head:
                seen.append((time.monotonic(), number))
                self.head = number
            await asyncio.sleep(POLL_INTERVAL)
        return seen

    async def honest_reader(self) -> None:
        address = Account.from_key(DEV_KEYS[0]).address
        while self.running():
            for request in (self.client.request("eth_blockNumber"),
                            self.client.request("eth_getBalance", address, "latest")):
                self.tally.record(*await self.client.post(request))
            await asyncio.sleep(0.05)

    async def honest_sender(self, key: str) -> None:
        while self.running():
            self.tally.record(*await self.client.post(self.client.request("eth_sendRawTransaction",
                                                                         self.signed(key))))
            await asyncio.sleep(0.2)

    async def hostile_client(self, make_body, pause: float) -> None:
        while self.running():
            self.tally.record(*await self.client.post(make_body()))
            await asyncio.sleep(pause)

    def hostile_kinds(self) -> list:
        request, addresses = self.client.request, ["0x" + secrets.token_hex(20) for _ in range(5000)]
        topics = ["0x" + secrets.token_hex(32) for _ in range(3000)]
        stranger = "0x" + secrets.token_hex(32)
        return [
            (lambda: b"[" * 200_000, 0.0),
            (lambda: b"[" + b"[]," * 1_700_000 + b"[]]", 0.0),
            (lambda: request("eth_getLogs", {"fromBlock": hex(max(self.head - 10_000, 0)), "toBlock": "latest",
                                             "address": addresses, "topics": [topics]}), 0.0),
            (lambda: request("eth_getLogs", {"fromBlock": "0x0", "toBlock": hex(10_000)}), 0.0),
            (lambda: [request("eth_getBlockByNumber", hex(n % (self.head + 1)), True) for n in range(1000)], 0.0),
            (lambda: [request("eth_newFilter", {"address": addresses[:1000], "topics": [topics[:1000]]})
                      for _ in range(100)] + [request("eth_newBlockFilter") for _ in range(100)], 0.0),
            (lambda: request("eth_sendRawTransaction", self.signed(stranger, b"\x00" * (TX_DATA_LIMIT + 2048), 0)),
             0.0),
            (lambda: request("eth_sendRawTransaction", self.signed(stranger, b"\x00" * (TX_DATA_LIMIT - 300), 0)),
             0.0),
            (lambda: request("eth_sendRawTransaction", self.signed(DEV_KEYS[BIG_SENDER], b"\x00" * (TX_DATA_LIMIT - 300))),
             0.5),
            (lambda: [request("eth_getBalance", addresses[n], hex(n % (self.head + 1))) for n in range(200)]
             + [request("eth_call", {"to": addresses[n], "data": "0x"}, hex(n % (self.head + 1)))
                for n in range(200)], 0.0),
            (lambda: request("grid_miningStats"), 0.0),
        ]


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                 connector=aiohttp.TCPConnector(limit=64))


async def read_chain(url: str) -> Chain:
    async with session() as http:
        client = Client(http, url)
        info = json.loads((await client.post(client.request("grid_nodeInfo")))[0] or b"{}")
        nonces = {}
        for index in (*HONEST_SENDERS, BIG_SENDER):
            address = Account.from_key(DEV_KEYS[index]).address
            nonces[address] = int(await client.result("eth_getTransactionCount", address, "pending"), 16)
        return Chain(int(await client.result("eth_chainId"), 16),
                     (info.get("result") or {}).get("consensus", {}).get("blockTime", 1),
                     int(await client.result("eth_blockNumber"), 16), nonces)


def hostile_process(url: str, chain: Chain, seconds: float, results) -> None:
    """The hostile side, in its own process so its work never delays the honest side's clock."""
    async def run() -> dict:
        async with session() as http:
            load = Load(Client(http, url), chain, time.monotonic() + seconds)
            await asyncio.gather(load.follow_head(), *(load.hostile_client(make, pause)
                                                       for make, pause in load.hostile_kinds()))
            return load.tally.summary()

    results.send(asyncio.run(run()))


async def honest_side(url: str, chain: Chain, seconds: float, pid: int | None):
    async with session() as http, session() as watcher_http:
        load = Load(Client(http, url), chain, time.monotonic() + seconds)
        watcher = Load(Client(watcher_http, url), chain, load.until)
        samples: list[int] = []
        seen, *_ = await asyncio.gather(
            watcher.follow_head(), sample_memory(pid, load, samples),
            *(load.honest_reader() for _ in range(2)), *(load.honest_sender(DEV_KEYS[i]) for i in HONEST_SENDERS))
        seen.append((time.monotonic(), watcher.head))
        return load.tally.summary(), seen, samples


async def read_timestamps(url: str, first: int) -> tuple[int, list[int]] | None:
    async with session() as http:
        client = Client(http, url)
        try:
            last = int(await client.result("eth_blockNumber"), 16)
            return last, [int((await client.result("eth_getBlockByNumber", hex(n), False))["timestamp"], 16)
                          for n in range(first, last + 1)]
        except RuntimeError:
            return None


async def sample_memory(pid: int | None, load: Load, samples: list[int]) -> None:
    while pid is not None and load.running():
        rss = memory(pid, "VmRSS")
        if rss is not None:
            samples.append(rss)
        await asyncio.sleep(0.2)


def memory(pid: int, field_name: str) -> int | None:
    """Bytes of a /proc/PID/status field (VmRSS, VmHWM), None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run(args: argparse.Namespace) -> dict:
    chain = asyncio.run(read_chain(args.rpc))
    rss_before = memory(args.pid, "VmRSS") if args.pid else None
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    hostile = context.Process(target=hostile_process, args=(args.rpc, chain, args.seconds, sender), daemon=True)
    hostile.start()
    honest, seen, samples = asyncio.run(honest_side(args.rpc, chain, args.seconds, args.pid))
    hostile_summary = receiver.recv() if receiver.poll(120) else {"unfinished": True}
    hostile.join(10)
    up = args.pid is None or memory(args.pid, "VmRSS") is not None
    chain_after = asyncio.run(read_timestamps(args.rpc, chain.first_block)) if up else None
    up = up and chain_after is not None
    last_block, stamps = chain_after or (seen[-1][1], [])
    poll_gap = max(later[0] - earlier[0] for earlier, later in zip(seen, seen[1:])) if len(seen) > 1 else None
    stamp_gap = max(b - a for a, b in zip(stamps, stamps[1:])) if len(stamps) > 1 else None
    peak = max([memory(args.pid, "VmHWM") or 0, *samples]) if args.pid else None
    growth = max(samples) - rss_before if samples and rss_before else None
    limit = MAX_GAP_INTERVALS * chain.interval
    gap_ok = stamp_gap is not None and stamp_gap <= limit and poll_gap is not None and poll_gap <= limit
    bar = {"node_up": up, "block_gap_ok": gap_ok, "rss_growth_ok": None if growth is None else growth < MAX_RSS_GROWTH}
    bar["passed"] = up and gap_ok and bar["rss_growth_ok"] is not False
    return {
        "seconds": args.seconds, "block_interval": chain.interval, "blocks": last_block - chain.first_block,
        "honest": honest, "hostile": hostile_summary,
        "block_gap": {"polled_max_s": round(poll_gap, 2) if poll_gap is not None else None,
                      "timestamps_max": stamp_gap},
        "rss": {"before_mb": mb(rss_before), "peak_mb": mb(peak), "growth_mb": mb(growth)},
        "node_up": up, "bar": bar,
    }


def mb(value: int | None) -> float | None:
    return None if value is None else round(value / 1024 / 1024, 1)


def report(figures: dict) -> str:
    honest, hostile, gap, rss, bar = (figures[k] for k in ("honest", "hostile", "block_gap", "rss", "bar"))
    return "\n".join([
        f"load: {figures['seconds']:g} s, {figures['blocks']} blocks at {figures['block_interval']} s",
        f"honest:  {honest['served']} served (p50 {honest['p50_ms']} ms, p95 {honest['p95_ms']} ms), "
        f"{honest['errors']} errors, {honest['failed']} failed",
        f"hostile: {hostile['errors']} answered with an error, {hostile['served']} served, "
        f"{hostile['failed']} failed",
        f"longest block gap: {gap['polled_max_s']} s polled, {gap['timestamps_max']} s by timestamps",
        f"node RSS: {rss['before_mb']} MB before, peak {rss['peak_mb']} MB, growth {rss['growth_mb']} MB",
        f"node up: {figures['node_up']}",
        f"bar (up, gap <= {MAX_GAP_INTERVALS} intervals, RSS growth < {MAX_RSS_GROWTH >> 20} MB): "
        f"{'PASSED' if bar['passed'] else 'FAILED'} {json.dumps(bar)}",
    ])


def main() -> int:
    args = parse_args()
    figures = run(args)
    print(json.dumps(figures) if args.json else report(figures))
    return 0 if figures["node_up"] else 1


if __name__ == "__main__":
    sys.exit(main())
