"""The invariants, checked after the run from the load's history and every node's chain.

Each check returns a row {"name", "ok", "evidence"}; `table` prints them. They read only what a
client can read (JSON-RPC), so they hold any node to the same account:

* safety: every node has the same block hash at every height up to the lowest head less
  `confirmations` (PoA and PoW have no finality: the tip may still be reorganised);
* acknowledged: every transaction whose receipt the load saw is on every node's chain, with the
  same status (the block may have moved in a reorg: counted, not a failure);
* nonces: each sender's transactions on the chain carry nonces 0, 1, … with none twice and none
  skipped;
* conservation: the sum of every balance the run touched changes between two blocks only by the
  engine's documented rewards (PoA none; PoW the fixed reward plus r · s per block, s counted as
  `consensus.pow.rewarded_transactions` counts it); nothing is burned;
* market (with `load.market`): every node holds the same double-auction book and last clearing,
  and the auction's token balances are exactly its open orders' escrow;
* liveness: measured by the runner after the last perturbation (see runner.py);
* evidence: what the honest nodes hold against others (`admin_misbehaviour`: penalties given to
  peers, equivocations observed, missed turns) names byzantine nodes only, and each byzantine
  node was caught in each of its modes, for the reason that mode must be caught for.

With byzantine nodes in the run every row but evidence is over the honest nodes only."""
from __future__ import annotations

import re
from collections import defaultdict

from market.agents.meter_driver import Rpc

STATE_WINDOW = 1_000
"""Balances are compared over at most this many blocks (nodes keep state for the last 1,024)."""


def safety(rpcs: list[Rpc], confirmations: int) -> dict:
    heads = [int(rpc("eth_blockNumber"), 16) for rpc in rpcs]
    upto = max(min(heads) - confirmations, 0)
    hashes = [[b["hash"] for b in _blocks(rpc, 0, upto)] for rpc in rpcs]
    differing = [n for n in range(upto + 1) if len({h[n] for h in hashes}) > 1]
    return {"name": "safety", "ok": not differing,
            "evidence": f"{len(rpcs)} nodes, heads {heads}: identical at heights 0..{upto}" if not differing else
            f"hashes differ at heights {differing[:10]} (of 0..{upto}; heads {heads})"}


def acknowledged(rpcs: list[Rpc], history: list[dict]) -> dict:
    """Every transaction whose receipt the load saw is on every node, with the same status. One
    is not lost when a node holds, in its place, another transaction the load itself signed with
    the same sender and nonce: the load re-reads its nonce from a live node after a failure, a
    node that had not seen the first one yet, and once a reorg drops the block the receipt came
    from, only one of the two can be mined."""
    seen, signed, slot_of, ids = {}, defaultdict(set), {}, {}
    for op in history:
        if op["op"] == "submit":
            ids[op["tx"]] = (op["sender"].lower(), op["nonce"])
        elif op["op"] == "ack":
            signed[ids[op["tx"]]].add(op["hash"])
        elif op["op"] == "receipt":
            seen[op["hash"]] = op
            slot_of[op["hash"]] = ids.get(op["tx"])
            signed[ids.get(op["tx"])].add(op["hash"])
    missing, wrong, moved, replaced = defaultdict(list), [], 0, defaultdict(list)
    hashes = sorted(seen)
    for k, rpc in enumerate(rpcs):
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            for tx_hash, receipt in zip(chunk, _receipts(rpc, chunk)):
                if not receipt:
                    rivals = sorted(signed[slot_of[tx_hash]] - {tx_hash})
                    (replaced if any(_receipts(rpc, rivals)) else missing)[k].append(tx_hash)
                    continue
                if int(receipt["status"], 16) != seen[tx_hash]["status"]:
                    wrong.append((k, tx_hash))
                if k == 0 and receipt["blockHash"] != seen[tx_hash]["blockHash"]:
                    moved += 1
    ok = not missing and not wrong
    evidence = (f"{len(seen)} transactions with a receipt seen, all on all {len(rpcs)} nodes with the same status"
                f"; {moved} moved to another block by a reorg")
    if replaced:
        evidence += (f"; {max(len(v) for v in replaced.values())} dropped by a reorg and replaced by the load's own "
                     f"transaction with the same nonce (e.g. {next(iter(replaced.values()))[0]})")
    if not ok:
        evidence = "; ".join([f"node{k} lacks {len(v)} (e.g. {v[0]})" for k, v in sorted(missing.items())]
                             + [f"{len(wrong)} with another status (e.g. node{k} {h})" for k, h in wrong[:1]])
    return {"name": "acknowledged", "ok": ok, "evidence": evidence, "lost": sum(len(v) for v in missing.values()),
            "replaced": max((len(v) for v in replaced.values()), default=0)}


def _receipts(rpc: Rpc, hashes: list[str]) -> list[dict | None]:
    return [reply.get("result") for reply in rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])] \
        if hashes else []


def nonces(rpc: Rpc, senders: list[str], head: int) -> dict:
    by_sender: dict[str, list[int]] = {s.lower(): [] for s in senders}
    for block in _blocks(rpc, 1, head, full=True):
        for tx in block["transactions"]:
            if tx["from"].lower() in by_sender:
                by_sender[tx["from"].lower()].append(int(tx["nonce"], 16))
    bad = {s: n for s, n in by_sender.items() if sorted(n) != list(range(len(n)))}
    applied = sum(len(n) for n in by_sender.values())
    return {"name": "nonces", "ok": not bad,
            "evidence": f"{applied} transactions of {len(senders)} senders up to block {head}: nonces 0..n−1, "
                        "none twice, none skipped" if not bad else
            "; ".join(f"{s}: {sorted(n)[:12]}…" for s, n in list(bad.items())[:3])}


def conservation(rpc: Rpc, engine, genesis_accounts: list[str], head: int) -> dict:
    """Σ balances at `head` − Σ at the base block = the rewards of the blocks between."""
    from consensus.pow import ProofOfWork

    base = max(head - STATE_WINDOW, 0)
    blocks = _blocks(rpc, base + 1, head, full=True)
    accounts = {a.lower() for a in genesis_accounts}
    for block in blocks:
        accounts.add(block["miner"].lower())
        for tx in block["transactions"]:
            accounts.add(tx["from"].lower())
            if tx.get("to"):
                accounts.add(tx["to"].lower())
    ordered = sorted(accounts)

    def supply(number: int) -> int:
        return sum(int(balance, 16) for balance in rpc.results([("eth_getBalance", [a, hex(number)]) for a in ordered]))

    rewards = 0
    if isinstance(engine, ProofOfWork):
        config = engine.config
        for block in blocks:
            receipts = rpc.results([("eth_getTransactionReceipt", [tx["hash"]]) for tx in block["transactions"]])
            counted = sum(1 for tx, r in zip(block["transactions"], receipts)
                          if int(r["status"], 16) == 1 and tx["from"].lower() != block["miner"].lower()
                          and (tx.get("to") or "").lower() != tx["from"].lower()
                          and int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16) >= config.reward_min_fee)
            rewards += config.fixed_reward + config.reward_per_tx * min(counted, config.reward_max_txs)
    before, after = supply(base), supply(head)
    ok = after - before == rewards
    return {"name": "conservation", "ok": ok,
            "evidence": f"{len(ordered)} accounts, blocks {base}..{head}: supply changed by {after - before} wei, "
                        f"the engine's rewards are {rewards}" + ("" if ok else f" (off by {after - before - rewards})")}


DETECTED_BY = {
    "bad-state-root": "state root mismatch",
    "bad-seal": "sealed by|signature|insufficient work|seal",
    "wrong-turn": "signed too recently|before its parent's period ended|producer",
    "flood-invalid-tx": "invalid transactions",
    "lying-sync": "invalid block in sync",
}
"""The penalty reason an honest node must give a peer in each mode (equivocate is caught as an
observed equivocation, withhold as missed turns)."""


SILENT = "silent producer"
"""The one slash an honest node may take: a scored engine slashes whoever misses the slot it was
drawn for (3.24), and a node the harness killed, paused or cut off did miss it."""


def evidence(nodes: list[dict], producers: dict[int, str], honest: list[int], modes: dict[int, set[str]],
             reports: list[dict], sent: dict[int, dict[str, int]], slashes: list[dict] = ()) -> dict:
    """`producers` maps each sealing node to its address; `reports[k]` is honest node `honest[k]`'s
    admin_misbehaviour; `modes` each byzantine node's modes and `sent` what each sent in them
    (its harness_status); `slashes` the engine's on-chain
    penalties (PoEG, PoSOC). Fails if an honest node was penalised, or slashed for anything but
    silence; if a byzantine node's mode acted and was not caught; or if a byzantine node never
    acted at all (nothing was tested). A mode that never acted (a producer never drawn for a slot,
    or already slashed out of the draws) is named, not failed, when another of the node's did."""
    peer_of = {node["p2p"].rsplit("/p2p/", 1)[-1]: i for i, node in enumerate(nodes)}
    node_of = {address.lower(): i for i, address in producers.items()}
    wrongly, caught = [], defaultdict(set)
    for observer, report in zip(honest, reports, strict=True):
        for penalty in report["penalties"]:
            target = peer_of.get(penalty["peer"])
            if target is None or target not in modes:
                wrongly.append(f"node{observer} penalised {f'node{target}' if target is not None else penalty['peer']}"
                               f": {penalty['reason']}")
                continue
            for mode, pattern in DETECTED_BY.items():
                if mode in modes[target] and re.search(pattern, penalty["reason"]):
                    caught[target].add(mode)
        for seen in report["equivocations"]:
            target = node_of.get(seen["producer"].lower())
            if target in modes:
                caught[target].add("equivocate")
            else:
                wrongly.append(f"node{observer} saw node{target} equivocate at block {seen['number']}")
        for address, count in report["missedTurns"].items():
            if node_of.get(address.lower()) in modes and count:
                caught[node_of[address.lower()]].add("withhold")
    slashed, silent_honest = defaultdict(set), 0
    for slash in slashes:
        target = node_of.get(slash["validator"].lower())
        if target in modes:  # the chain's memory outlives an observer's restart
            slashed[target].add(slash["reason"].split(" at height")[0])
            if slash["reason"] == SILENT or slash["reason"].startswith("equivocation"):
                caught[target].add("withhold" if slash["reason"] == SILENT else "equivocate")
        elif slash["reason"] == SILENT:
            silent_honest += 1
        else:
            wrongly.append(f"node{target} slashed at block {slash['number']}: {slash['reason']}")
    uncaught, idle, acted = [], [], {}
    for i, wanted in sorted(modes.items()):
        acted[i] = {mode for mode in wanted if sent.get(i, {}).get(mode)}
        uncaught += [f"node{i} {mode} not caught" for mode in sorted(acted[i] - caught[i])]
        idle += [f"node{i} {mode}" for mode in sorted(wanted - acted[i])]
        if not acted[i]:
            uncaught.append(f"node{i} never acted in {', '.join(sorted(wanted))} (it sent nothing): nothing was tested")
    ok = not wrongly and not uncaught
    if ok:
        # a mode held against a node that did not act in it (by its counters, which a restart
        # clears) is named apart: a missed turn of a killed node, or a detector's false alarm
        said = "; ".join(f"node{i} caught for {', '.join(sorted(caught[i] & acted[i])) or 'nothing it did'}"
                         + (f", slashed for {', '.join(sorted(slashed[i]))}" if slashed[i] else "")
                         + (f" (also held against it: {', '.join(sorted(caught[i] & modes[i] - acted[i]))})"
                            if caught[i] & modes[i] - acted[i] else "")
                         for i in sorted(modes)) or "no byzantine nodes in this run"
        evidence_text = f"{said}; nothing held against the honest nodes {honest}"
    else:
        evidence_text = "; ".join([*wrongly[:4], *uncaught])
    if idle:
        evidence_text += f"; never acted (no turn came): {', '.join(idle)}"
    if silent_honest:
        evidence_text += f"; honest nodes slashed {silent_honest}× for a missed slot (silence, the engine's rule)"
    return {"name": "evidence", "ok": ok, "evidence": evidence_text, "held_against_honest": len(wrongly),
            "never_acted": idle, "honest_silent_slashes": silent_honest}


def market(rpcs: list[Rpc], head: int, history: list[dict]) -> dict:
    """The double auction at block `head` on every node: the same book (every order, its fill and
    status) and the same last clearing; and its escrow exact: its fiat and energy token balances
    are the escrow of its open bids and asks, to the base unit (what cleared was paid out)."""
    from eth_abi import decode

    from cli.testnet.calls import abi_call
    from market.contracts.addresses import ENERGY_TOKEN, FIAT_TOKEN
    from market.contracts.double_auction import DOUBLE_AUCTION, Status

    tag = hex(head)
    auction = DOUBLE_AUCTION.to_checksum()

    def call(rpc: Rpc, to: str, data: bytes) -> bytes:
        return bytes.fromhex(rpc("eth_call", {"to": to, "data": "0x" + data.hex()}, tag)[2:])

    def book(rpc: Rpc) -> tuple:
        (count,) = decode(["uint256"], call(rpc, auction, abi_call("orderCount()")))
        orders = [decode(["address", "bool", "uint256", "uint256", "uint256", "uint256", "uint8", "uint256"],
                         bytes.fromhex(reply[2:]))
                  for reply in rpc.results([("eth_call", [{"to": auction, "data": "0x" + abi_call(
                      "order(uint256)", k).hex()}, tag]) for k in range(count)])]
        clearing = decode(["uint256"] * 4 + ["bool"], call(rpc, auction, abi_call("lastClearing()")))
        return tuple(orders), clearing

    books = [book(rpc) for rpc in rpcs]
    orders, clearing = books[0]
    if any(b != books[0] for b in books[1:]):
        differ = [k for k, b in enumerate(books) if b != books[0]]
        return {"name": "market", "ok": False, "evidence": f"nodes {differ} hold another book or clearing than "
                f"the first at block {head}"}
    held = [decode(["uint256"], call(rpcs[0], token.to_checksum(), abi_call("balanceOf(address)", auction)))[0]
            for token in (FIAT_TOKEN, ENERGY_TOKEN)]
    escrow = [sum(o[4] for o in orders if o[6] == Status.OPEN and o[1] == is_bid) for is_bid in (True, False)]
    sent = {op["tx"]: op["kind"] for op in history if op["op"] == "submit"}
    calls = [op for op in history if op["op"] == "receipt" and sent.get(op["tx"], "transfer") != "transfer"]
    reverted = sum(1 for op in calls if op["status"] == 0)
    ok = held == escrow
    evidence = (f"{len(rpcs)} nodes hold one book at block {head}: {len(orders)} orders "
                f"({sum(1 for o in orders if o[6] == Status.SETTLED)} cleared, "
                f"{sum(1 for o in orders if o[7])} filled), last clearing interval {clearing[0]} at price "
                f"{clearing[1]} for {clearing[2]} Wh; escrow held {held[0]} fiat, {held[1]} Wh = its open orders'; "
                f"{len(calls)} market calls with a receipt, {reverted} reverted")
    if not ok:
        evidence = (f"the auction holds {held[0]} fiat and {held[1]} Wh at block {head}, its open orders' escrow "
                    f"is {escrow[0]} fiat and {escrow[1]} Wh")
    return {"name": "market", "ok": ok, "evidence": evidence}


def full_disk(outcomes: list[dict]) -> dict:
    """Every node whose disk filled either stopped with the store's readable error (nothing of
    the failed write landed; the other rows show it lost nothing and caught up) or kept running;
    any other exit (a traceback, a crash) fails."""
    bad = [o for o in outcomes if o["outcome"] == "stopped otherwise"]
    counts = {kind: sum(o["outcome"] == kind for o in outcomes) for kind in ("stopped cleanly", "kept running")}
    evidence = (f"disks filled {len(outcomes)}; nodes that stopped with the store's error and were started again "
                f"{counts['stopped cleanly']}; that kept running {counts['kept running']}")
    if bad:
        evidence = "; ".join(f"node{o['node']} stopped otherwise: {o['said']!r}" for o in bad)
    return {"name": "full disk", "ok": not bad, "evidence": evidence}


def longest_stall(rpc: Rpc, head: int) -> dict:
    """The longest time between two consecutive blocks of the final chain, by their timestamps:
    how long production stopped at worst (a figure, not an invariant)."""
    stamps = [int(b["timestamp"], 16) for b in _blocks(rpc, 1, head)]
    if len(stamps) < 2:
        return {"seconds": 0, "after_block": None}
    gap, at = max((b - a, n + 1) for n, (a, b) in enumerate(zip(stamps, stamps[1:])))
    return {"seconds": gap, "after_block": at}


def table(rows: list[dict]) -> str:
    width = max(len(r["name"]) for r in rows)
    return "\n".join(f"  {'PASS' if r['ok'] else 'FAIL'}  {r['name']:<{width}}  {r['evidence']}" for r in rows)


def _blocks(rpc: Rpc, first: int, last: int, full: bool = False) -> list[dict]:
    out = []
    for start in range(first, last + 1, 200):
        out += rpc.results([("eth_getBlockByNumber", [hex(n), full]) for n in range(start, min(start + 199, last) + 1)])
    return out
