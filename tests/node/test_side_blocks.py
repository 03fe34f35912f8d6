"""Side blocks are bounded: refused at or below the reorg horizon, capped per height and per
producer, pruned as the head moves on; a bad block is remembered, so its descendants are
refused without work, and forgetting it forgets the stored blocks built on it. Every change
lands in one write batch.

The chain has ten PoA signers. Blocks are empty, so a forged child with its parent's state
root is a valid block (PoA mints nothing): in turn it weighs 2, out of turn 1."""
from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from consensus.engine import Signer
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from node import chain as chain_module
from node.chain import (MAX_SIDE_BLOCKS_PER_HEIGHT, MAX_SIDE_BLOCKS_PER_PRODUCER, BlockRefused, Chain,
                        ImportStatus)
from node.store import SIDE, Store
from vm.blocks import Block, Header, InvalidBlock
from vm.merkle import list_root
from vm.types import Address

SIGNERS = [Signer(bytes([index + 1]) * 32) for index in range(10)]
EMPTY_ROOT = list_root([])
HORIZON_DEPTH = 4
"""MAX_REORG_DEPTH in the tests that reach the horizon, so they need a few blocks, not a thousand."""


def open_chain(path) -> Chain:
    document = devnet_genesis_document(SIGNERS[0].address)
    document["consensus"]["signers"] = [signer.address.to_checksum() for signer in SIGNERS]
    document["consensus"]["epoch"] = 1_000_000  # no checkpoints: forged blocks carry no signer list
    genesis = Genesis.from_json(document)
    return Chain(Store(str(path)), genesis, genesis.create_engine())


@pytest.fixture
def chain(tmp_path):
    opened = open_chain(tmp_path / "chain")
    yield opened
    opened.store.close()


@pytest.fixture
def shallow(monkeypatch):
    monkeypatch.setattr(chain_module, "MAX_REORG_DEPTH", HORIZON_DEPTH)


def in_turn(number: int) -> Signer:
    return SIGNERS[number % len(SIGNERS)]


def may_seal(chain: Chain, parent: Header, signer: Signer) -> bool:
    return chain.engine.production_time(chain, parent, signer.address) is not None


def out_of_turn(chain: Chain, parent: Header, place: int = 0) -> Signer:
    """The `place`-th signer who may seal a child of (stored) `parent` out of turn."""
    number = parent.number + 1
    return [signer for signer in SIGNERS if signer is not in_turn(number) and may_seal(chain, parent, signer)][place]


def child(chain: Chain, parent: Header, signer: Signer, *, nudge: int = 0, state_root: bytes | None = None) -> Block:
    """An empty block on `parent` sealed by `signer`; `nudge` seconds later makes a sibling."""
    env = chain.environment(parent, parent.timestamp + 1 + nudge, signer.address)
    header = Header(parent_hash=parent.hash, number=env.number, timestamp=env.timestamp, producer=signer.address,
                    state_root=state_root or parent.state_root, transactions_root=EMPTY_ROOT,
                    receipts_root=EMPTY_ROOT, logs_bloom=bytes(256), gas_limit=env.gas_limit, gas_used=0,
                    base_fee=env.base_fee, difficulty=2 if signer is in_turn(env.number) else 1)
    return Block(header.with_seal(signer.sign(header.seal_hash)), ())


def next_block(chain: Chain, parent: Header) -> Block:
    """A child of (stored) `parent`, in turn where the recent-signer rule allows."""
    signer = in_turn(parent.number + 1)
    return child(chain, parent, signer if may_seal(chain, parent, signer) else out_of_turn(chain, parent))


def grow(chain: Chain, count: int) -> None:
    for _ in range(count):
        assert chain.import_block(next_block(chain, chain.head)) is ImportStatus.HEAD


def sibling(chain: Chain, number: int, place: int = 0, nudge: int = 0) -> Block:
    """An out-of-turn block at `number` beside the canonical one: lighter, so a side block."""
    parent = chain.header_by_number(number - 1)
    return child(chain, parent, out_of_turn(chain, parent, place), nudge=nudge)


def resealed(header: Header, signer: Signer, **changes) -> Header:
    changed = replace(header, **changes)
    return changed.with_seal(signer.sign(changed.seal_hash))


def indexed(chain: Chain) -> dict[bytes, bytes]:
    return {block_hash: producer for _, block_hash, producer in chain.store.side_blocks()}


def stored_keys(chain: Chain, block_hash: bytes) -> list[bytes]:
    """The prefixes under which anything of `block_hash` is stored, side index included."""
    found = [prefix for prefix in (b"h", b"b", b"w", b"r", b"u") if chain.store.db.get(prefix + block_hash) is not None]
    side_keys = [key for key, _ in chain.store.db.iterator(prefix=SIDE) if key.endswith(block_hash)]
    return found + [SIDE] * len(side_keys)


# -- caps -----------------------------------------------------------------------------------
def test_side_blocks_are_capped_per_producer_and_per_height(chain):
    grow(chain, 6)
    first_producer = [sibling(chain, 3, place=0, nudge=n) for n in range(MAX_SIDE_BLOCKS_PER_PRODUCER + 1)]
    for block in first_producer[:-1]:
        assert chain.import_block(block) is ImportStatus.SIDE
    with pytest.raises(BlockRefused, match=f"already has {MAX_SIDE_BLOCKS_PER_PRODUCER} side blocks at height 3"):
        chain.import_block(first_producer[-1])
    for place in (1, 2, 3):
        for nudge in range(MAX_SIDE_BLOCKS_PER_PRODUCER):
            assert chain.import_block(sibling(chain, 3, place, nudge)) is ImportStatus.SIDE
    one_too_many = sibling(chain, 3, place=4)
    with pytest.raises(BlockRefused, match=f"height 3 already has {MAX_SIDE_BLOCKS_PER_HEIGHT} side blocks"):
        chain.import_block(one_too_many)
    for refused in (first_producer[-1], one_too_many):
        assert chain.header_by_hash(refused.hash) is None and stored_keys(chain, refused.hash) == []
    assert len(indexed(chain)) == len(chain.orphans) == MAX_SIDE_BLOCKS_PER_HEIGHT
    assert chain.import_block(sibling(chain, 4)) is ImportStatus.SIDE  # the cap is per height


def test_side_blocks_at_or_below_the_reorg_horizon_are_refused(chain, shallow):
    grow(chain, 10)
    horizon = chain.head.number - HORIZON_DEPTH
    with pytest.raises(BlockRefused, match=f"block {horizon} is at or below the reorg horizon {horizon}"):
        chain.import_block(sibling(chain, horizon))
    assert chain.import_block(sibling(chain, horizon + 1)) is ImportStatus.SIDE
    assert chain.import_block(chain.block(chain.header_by_number(1).hash)) is ImportStatus.KNOWN  # canonical: known


# -- pruning ----------------------------------------------------------------------------------
def test_side_and_reorged_out_blocks_are_pruned_as_the_head_passes_the_horizon(chain, shallow):
    grow(chain, 3)  # weight 6
    reorged_out = chain.head
    branch_3 = sibling(chain, 3)  # weight 5: a side block, until its in-turn child makes the branch weigh 7
    side_3 = sibling(chain, 3, place=1)
    assert chain.import_block(branch_3) is chain.import_block(side_3) is ImportStatus.SIDE
    assert chain.import_block(child(chain, branch_3.header, in_turn(4))) is ImportStatus.HEAD
    assert set(chain.orphans) == {reorged_out.hash, side_3.hash}
    assert indexed(chain) == {block_hash: bytes(producer) for block_hash, producer in chain.orphans.items()}
    assert set(stored_keys(chain, reorged_out.hash)) == {b"h", b"b", b"w", b"r", b"u", SIDE}
    assert stored_keys(chain, branch_3.hash) == [b"h", b"b", b"w", b"r", b"u"]  # canonical: out of the index

    grow(chain, 3 + HORIZON_DEPTH - chain.head.number)  # the horizon reaches height 3
    for pruned in (reorged_out, side_3):
        assert stored_keys(chain, pruned.hash) == [] and chain.header_by_hash(pruned.hash) is None
    assert chain.orphans == {} and indexed(chain) == {}
    assert chain.header_by_number(3).hash == branch_3.hash and chain.block(branch_3.hash) is not None


def test_extending_the_chain_reads_only_the_heights_the_horizon_passed_and_deletes_nothing(chain, shallow,
                                                                                          monkeypatch):
    """A block that was never a side block leaves no delete in the side index: a LevelDB
    tombstone each, which the pruning read then stepped over, made every import slower as the
    chain grew (bench/sync.py, 20,000 empty blocks: 1,330 blocks/s with them, 1,556 without)."""
    grow(chain, 6)
    assert chain.import_block(sibling(chain, 5)) is ImportStatus.SIDE
    reads, deletes = [], []
    side_blocks = chain.store.side_blocks
    monkeypatch.setattr(chain.store, "side_blocks", lambda first=0, last=None: reads.append((first, last))
                        or side_blocks(first, last))
    monkeypatch.setattr(chain_module, "unset_side", lambda batch, number, block_hash: deletes.append(number))
    grow(chain, 4)  # heads 7..10: horizons 3..6, the side block at 5 pruned on the way
    assert reads == [(3, 3), (4, 4), (5, 5), (6, 6)] and deletes == []
    assert indexed(chain) == {} and chain.orphans == {}


def test_orphans_are_read_back_from_the_side_index_on_reopen(tmp_path):
    path = tmp_path / "reopen"
    chain = open_chain(path)
    grow(chain, 4)
    sides = [sibling(chain, number) for number in (2, 3)]
    for block in sides:
        chain.import_block(block)
    orphans = dict(chain.orphans)
    chain.store.close()
    reopened = open_chain(path)
    assert reopened.orphans == orphans == {block.hash: block.header.producer for block in sides}
    reopened.store.close()


# -- bad blocks ---------------------------------------------------------------------------------
def test_a_child_of_a_bad_block_is_refused_without_being_executed(chain, monkeypatch):
    grow(chain, 2)
    bad = child(chain, chain.head, in_turn(3), state_root=b"\x44" * 32)
    with pytest.raises(InvalidBlock, match="state root mismatch"):
        chain.import_block(bad)
    executed = []
    monkeypatch.setattr(chain, "_execute", lambda *args: executed.append(args))
    with pytest.raises(InvalidBlock, match="known bad block: state root mismatch"):
        chain.import_block(bad)
    with pytest.raises(InvalidBlock, match=f"parent 0x{bad.hash.hex()} is a known bad block"):
        chain.import_block(child(chain, bad.header, in_turn(4)))
    grandchild = child(chain, child(chain, bad.header, in_turn(4)).header, in_turn(5))
    with pytest.raises(InvalidBlock, match="known bad block"):
        chain.import_block(grandchild)  # its parent was remembered as bad in turn
    assert executed == [] and chain.head.number == 2


def test_header_failures_are_remembered_but_a_block_from_the_future_is_not(chain, monkeypatch):
    grow(chain, 1)
    signer = out_of_turn(chain, chain.head)
    wrong_turn = Block(resealed(child(chain, chain.head, signer).header, signer, difficulty=2), ())
    early = child(chain, chain.head, in_turn(2), nudge=100 * 365 * 24 * 3600)
    with pytest.raises(InvalidBlock, match="wrong difficulty"):
        chain.import_block(wrong_turn)
    with pytest.raises(BlockRefused, match="ahead of this node's clock"):
        chain.import_block(early)  # refused, not invalid: our own clock may be the wrong one
    checked = []
    verify = chain.engine.verify_header
    monkeypatch.setattr(chain.engine, "verify_header", lambda *args: checked.append(args) or verify(*args))
    with pytest.raises(InvalidBlock, match="known bad block: poa: wrong difficulty"):
        chain.import_block(wrong_turn)
    with pytest.raises(BlockRefused, match="ahead of this node's clock"):
        chain.import_block(early)  # checked again, not refused as known bad: it may be good later
    assert checked == []
    assert chain.import_block(early, now=early.header.timestamp) is ImportStatus.HEAD  # good once its time comes


def test_forgetting_a_bad_block_forgets_the_stored_blocks_built_on_it(chain):
    grow(chain, 3)  # weight 6
    good_1 = sibling(chain, 1)
    assert chain.import_block(good_1) is ImportStatus.SIDE
    bad_2 = child(chain, good_1.header, out_of_turn(chain, good_1.header), state_root=b"\x44" * 32)
    assert chain.import_block(bad_2) is ImportStatus.SIDE  # weight 2; side blocks are not executed
    on_bad_3 = child(chain, bad_2.header, out_of_turn(chain, bad_2.header))
    assert chain.import_block(on_bad_3) is ImportStatus.SIDE  # weight 3
    on_bad_4 = child(chain, on_bad_3.header, in_turn(4))
    assert chain.import_block(on_bad_4) is ImportStatus.SIDE  # weight 5
    tip = child(chain, on_bad_4.header, in_turn(5))  # weight 7: the branch would win
    with pytest.raises(InvalidBlock, match="state root mismatch"):
        chain.import_block(tip)
    for forgotten in (bad_2, on_bad_3, on_bad_4, tip):
        assert stored_keys(chain, forgotten.hash) == [] and forgotten.hash not in chain.orphans
    assert set(chain.orphans) == set(indexed(chain)) == {good_1.hash}
    assert chain.head.number == 3
    with pytest.raises(InvalidBlock, match="known bad block: descends from bad block"):
        chain.import_block(on_bad_4)  # not re-stored, not re-executed
    with pytest.raises(InvalidBlock, match="known bad block"):
        chain.import_block(child(chain, tip.header, in_turn(6)))


# -- atomicity ------------------------------------------------------------------------------------
class _BatchOnly:
    """The store's database, refusing any write that is not part of a write batch."""

    def __init__(self, db) -> None:
        self._db = db

    def __getattr__(self, name):
        if name in ("put", "delete"):
            raise AssertionError(f"db.{name} outside a write batch")
        return getattr(self._db, name)


class _Crash(Exception):
    """Stands in for kill -9 in the middle of staging a batch."""


def test_every_side_block_change_is_one_write_batch(chain, shallow, monkeypatch):
    monkeypatch.setattr(chain.store, "db", _BatchOnly(chain.store.db))
    grow(chain, 3)  # weight 6
    assert chain.import_block(sibling(chain, 3)) is ImportStatus.SIDE  # stored and indexed
    parent = chain.header_by_number(1)
    bad_2 = child(chain, parent, out_of_turn(chain, parent), state_root=b"\x44" * 32)
    assert chain.import_block(bad_2) is ImportStatus.SIDE
    on_bad_3 = child(chain, bad_2.header, out_of_turn(chain, bad_2.header))
    assert chain.import_block(on_bad_3) is ImportStatus.SIDE  # weight 4
    on_bad_4 = child(chain, on_bad_3.header, in_turn(4))
    assert chain.import_block(on_bad_4) is ImportStatus.SIDE  # weight 6, as the head, but higher
    with pytest.raises(InvalidBlock, match="state root mismatch"):  # weight 7 or 8: forgets the branch
        chain.import_block(next_block(chain, on_bad_4.header))
    branch_3 = sibling(chain, 3, place=2)  # not the signer in turn at 4
    assert chain.import_block(branch_3) is ImportStatus.SIDE
    assert chain.import_block(child(chain, branch_3.header, in_turn(4))) is ImportStatus.HEAD  # a reorg
    grow(chain, HORIZON_DEPTH)  # prunes heights 1..4
    assert chain.orphans == {} and indexed(chain) == {}


def test_a_crash_while_staging_leaves_no_half_written_side_block_or_prune(tmp_path, shallow, monkeypatch):
    path = tmp_path / "crash"
    chain = open_chain(path)
    grow(chain, 3)
    side = sibling(chain, 2)

    def crash(*args):
        raise _Crash()

    with monkeypatch.context() as patch:
        patch.setattr(chain_module, "put_side", crash)  # staged after put_block, in the same batch
        with pytest.raises(_Crash):
            chain.import_block(side)
    assert stored_keys(chain, side.hash) == []
    assert chain.import_block(side) is ImportStatus.SIDE
    grow(chain, 2 + HORIZON_DEPTH - 1 - chain.head.number)  # one block short of pruning height 2
    head = chain.head
    pruning = next_block(chain, head)
    with monkeypatch.context() as patch:
        patch.setattr(chain_module, "delete_block", crash)  # the prune, in the head move's batch
        with pytest.raises(_Crash):
            chain.import_block(pruning)
    chain.store.close()
    reopened = open_chain(path)
    assert reopened.head == head  # the head did not move without its prune, nor the prune without it
    assert set(stored_keys(reopened, side.hash)) == {b"h", b"b", b"w", SIDE} and side.hash in reopened.orphans
    assert reopened.import_block(pruning) is ImportStatus.HEAD
    assert stored_keys(reopened, side.hash) == [] and reopened.orphans == {}
    reopened.store.close()


CHURN = """
import sys
sys.path.insert(0, {tests!r})
import test_side_blocks as t
t.chain_module.MAX_REORG_DEPTH = t.HORIZON_DEPTH
chain = t.open_chain({path!r})
while True:  # a side block stored and one pruned per head move, until killed
    t.grow(chain, 1)
    chain.import_block(t.sibling(chain, chain.head.number))
    print(chain.head.number, flush=True)
"""


@pytest.mark.slow
@pytest.mark.few_nodes
def test_kill_9_while_side_blocks_come_and_go_leaves_a_consistent_store(tmp_path):
    path = tmp_path / "churn"
    script = CHURN.format(tests=str(Path(__file__).parent), path=str(path))
    for kill_after in (7, 23, 41):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            for _ in range(kill_after):
                assert process.stdout.readline(), "the churn stopped by itself"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(60)
        chain = open_chain(path)
        try:
            assert chain.state_db.root == chain.head.state_root
            assert chain.orphans == {block_hash: Address(producer) for block_hash, producer in indexed(chain).items()}
            for number, block_hash, _ in chain.store.side_blocks():
                assert {b"h", b"b", b"w"} <= set(stored_keys(chain, block_hash))
                assert number > chain.head.number - HORIZON_DEPTH  # pruned with the head move that passed it
            for key, _ in chain.store.db.iterator(prefix=b"h"):
                header = chain.header_by_hash(key[1:])
                assert chain.store.canonical_hash(header.number) == header.hash or header.hash in chain.orphans
        finally:
            chain.store.close()
