#!/usr/bin/env python3
"""Double-auction clearing time, in process: the DoubleAuction's end-of-block hook clearing a
book of 1,000 and 10,000 orders (issue 10: 10,000 orders within one block interval).

The book is written gas-free into the contract's storage over the devnet genesis state, as a
genesis would (orders, and the escrow they hold credited to the contract's fiat and energy
token balances), then the hook runs exactly as the block pipeline runs it (`run_frame` with
the contract's `end_of_block_gas`) on the interval's last block: reading every order, sorting
bids and asks (O(n log n)), matching, one Fill log per matched pair, and one token `transfer`
per account and token paid out. It prints per book: wall time of the whole hook, gas used
against the budget, fills, volume and the clearing price.

Books: `crossed` (every bid above every ask: everything trades, the most fills and transfers)
and `random` (prices drawn on both sides around one level: about half trades); owners
`distinct` (each order its own account: one transfer per order, the worst case for gas) or
`few` (the 19 devnet prosumers).

    python bench/clearing.py [--orders 1000 10000] [--json]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "market")]

from market.contracts.addresses import ENERGY_TOKEN, FIAT_TOKEN  # noqa: E402
from market.contracts.double_auction import (  # noqa: E402
    END_OF_BLOCK_GAS, OPEN_COUNT, ORDER_COUNT, ORDERS, cost_of)
from market.contracts.erc20 import BALANCES  # noqa: E402
from market_sandbox import ACCOUNTS, PRODUCER, Sandbox, devnet_document  # noqa: E402
from vm.crypto import keccak256  # noqa: E402
from vm.environment import BlockEnvironment  # noqa: E402
from vm.native.contract import CallContext, OutOfGas, Revert, run_frame  # noqa: E402
from vm.state import State  # noqa: E402
from vm.types import ZERO_ADDRESS, Address  # noqa: E402

INTERVAL = 10


def build_book(n: int, book: str, owners: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    orders = []
    for i in range(n):
        is_bid = i % 2 == 0
        if book == "crossed":
            price = rng.randint(60, 100) if is_bid else rng.randint(1, 40)
        else:
            price = rng.randint(20, 40)
        wh = rng.randint(100, 5_000)
        if owners == "distinct":
            owner = Address(keccak256(b"bench owner" + i.to_bytes(8, "big"))[:20])
        else:
            owner = ACCOUNTS[1 + i % 19].address
        orders.append({"owner": owner.to_checksum(), "isBid": is_bid, "wh": wh, "pricePerKWh": price,
                       "escrow": cost_of(wh, price) if is_bid else wh, "interval": 0, "cancelled": False})
    return orders


def run(n: int, book: str, owners: str, seed: int) -> dict:
    box = Sandbox(devnet_document(DoubleAuction={"intervalBlocks": INTERVAL}))
    contract = box.contracts.by_name("DoubleAuction")
    address = contract.address
    state = box.state
    for order_id, order in enumerate(build_book(n, book, owners, seed)):
        ORDERS.write(state, address, order_id, order)
    orders = [ORDERS.read(state, address, i) for i in range(n)]
    ORDER_COUNT.write(state, address, n)
    OPEN_COUNT.write(state, address, n)
    BALANCES.write(state, FIAT_TOKEN, address, sum(o["escrow"] for o in orders if o["isBid"]))
    BALANCES.write(state, ENERGY_TOKEN, address, sum(o["escrow"] for o in orders if not o["isBid"]))
    box._commit(state)

    state = State(box.committed)
    env = BlockEnvironment(box.genesis.chain_id, INTERVAL - 1, box.timestamp + INTERVAL, PRODUCER,
                           box.genesis.base_fee, box.genesis.gas_limit)
    ctx = CallContext(state, env, box.contracts, address, ZERO_ADDRESS, ZERO_ADDRESS, 0, contract.end_of_block_gas)
    started = time.perf_counter()
    error = None
    try:
        run_frame(ctx, b"", entry=contract.end_of_block)
    except (Revert, OutOfGas) as exc:
        error = exc.reason if isinstance(exc, Revert) else "out of gas"
    seconds = time.perf_counter() - started
    result = contract.clearing_at(state, address, 0) if error is None else None
    left = (BALANCES.read(state, FIAT_TOKEN, address), BALANCES.read(state, ENERGY_TOKEN, address))
    return {"orders": n, "book": book, "owners": owners, "ok": error is None, "error": error,
            "seconds": round(seconds, 4), "gas": contract.end_of_block_gas - ctx.gas_left,
            "gas_budget": contract.end_of_block_gas, "logs": len(ctx.logs),
            "fills": result["fills"] if result else 0, "volume_wh": result["volumeWh"] if result else 0,
            "price": result["price"] if result else 0, "escrow_left": left if error is None else None,
            "block_time_s": box.genesis.block_time}


def run_all(orders: list[int], books: list[str], owners: list[str], seed: int = 1) -> list[dict]:
    return [run(n, book, kind, seed) for n in orders for book in books for kind in owners]


def succeeded(rows: list[dict]) -> bool:
    """Every clearing finished within its gas and left no escrow behind."""
    return all(r["ok"] and r["escrow_left"] == (0, 0) for r in rows)


def print_rows(rows: list[dict]) -> None:
    print(f"DoubleAuction clearing in process (end_of_block_gas {END_OF_BLOCK_GAS:,}; "
          f"block time {rows[0]['block_time_s']} s)")
    print(f"{'orders':>7} {'book':>8} {'owners':>9} {'ok':>3} {'seconds':>8} {'gas':>13} {'fills':>6} "
          f"{'volume Wh':>11} {'price':>6}")
    for r in rows:
        print(f"{r['orders']:>7,} {r['book']:>8} {r['owners']:>9} {'yes' if r['ok'] else 'NO':>3} "
              f"{r['seconds']:>8.3f} {r['gas']:>13,} {r['fills']:>6,} {r['volume_wh']:>11,} {r['price']:>6}"
              + (f"  ({r['error']})" if r["error"] else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--books", nargs="+", default=["crossed", "random"], choices=["crossed", "random"])
    parser.add_argument("--owners", nargs="+", default=["distinct", "few"], choices=["distinct", "few"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    rows = run_all(args.orders, args.books, args.owners, args.seed)
    if args.json:
        print(json.dumps({"end_of_block_gas": END_OF_BLOCK_GAS, "runs": rows}, indent=2))
    else:
        print_rows(rows)
    return 0 if succeeded(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
