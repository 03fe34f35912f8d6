"""Byzantine producers for the fault harness (`gridnode testnet`): what a faulty or hostile node
does, switched at run time over `harness_setByzantine` on a node started with `--harness` on a
test chain (cli/start.py refuses it anywhere else). Each mode is something the honest nodes must
detect, with the reason logged and recorded in their `admin_misbehaviour`:

* equivocate: each block is sealed twice, the twin at the same height with no transactions and
  one second later, and both are announced → honest nodes keep both and record the equivocation
  (an engine that slashes for it also gets the evidence transaction, node/evidence.py);
* bad-state-root: the announced block carries a wrong state root under a valid seal → refused
  for "state root mismatch", the sender penalised;
* bad-seal: the announced block carries no real seal (65 zero bytes: no signature, no work, so
  it costs the cheat nothing and comes every block time, whether or not it is the node's turn)
  → refused at the seal check;
* wrong-turn: the node also seals, one block time after the parent, when the engine says it may
  not (PoA: signed too recently; PoEG/PoSOC: another validator is the slot's producer), and on a
  turn it does hold, once a second before the turn comes (a scored engine's drawn producer holds
  every turn of its slot, so otherwise a short run might see no wrong turn) → refused;
* withhold: the node seals nothing when its turn comes, a silent producer → others take its
  turns (missed turns; PoEG and PoSOC slash it);
* flood-invalid-tx: gossip FLOOD_BATCH transactions for another chain every second → the
  sender penalised per transaction, and banned;
* lying-sync: every sync answer starts with a block whose seal is damaged → the syncing node
  penalises the peer ("invalid block in sync") and asks another.

In the corrupting modes (and a wrong turn) the node announces the bad block without committing
it, so it stays on the honest chain and is honest again the moment the harness says so."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Callable

import rlp

from consensus.engine import Engine, Signer
from vm.blocks import Header, parse_block
from vm.crypto import keccak256
from vm.transactions import sign_legacy
from vm.types import Address

log = logging.getLogger("gridnode.byzantine")

MODES = ("equivocate", "bad-state-root", "bad-seal", "wrong-turn", "withhold", "flood-invalid-tx", "lying-sync")
CORRUPTING = ("bad-state-root", "bad-seal")
"""Modes in which the node announces a damaged copy of its block instead of the block."""
EAGER = ("bad-seal", "wrong-turn")
"""Modes that do not wait for the node's turn: a scored engine draws one producer a slot, and a
mode that acted only on the node's own turns might not act at all in a short run."""
FLOOD_BATCH = 16
FLOOD_SECONDS = 1.0


class Misbehaviour:
    """The mode a harness-started node is in now (None: honest)."""

    def __init__(self) -> None:
        self.mode: str | None = None
        self.counts: dict[str, int] = {}
        """How many bad blocks or transactions each mode has sent, for `harness_status`."""

    def set(self, mode: str | None) -> None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown byzantine mode {mode!r} (known: {', '.join(MODES)})")
        if mode != self.mode:
            log.warning("byzantine mode %s", mode or "off: honest again")
        self.mode = mode

    def sent(self, what: int = 1) -> None:
        self.counts[self.mode] = self.counts.get(self.mode, 0) + what


FAKE_SEAL = b"\x00" * 65


def corrupt(engine: Engine, header: Header, mode: str, signer: Signer, stop) -> Header | None:
    """The damaged copy of the unsealed `header` that `mode` announces (None if sealing was stopped)."""
    if mode == "bad-seal":
        return header.with_seal(FAKE_SEAL)
    wrong = replace(header, state_root=keccak256(b"not the state root" + header.state_root))
    return engine.seal(wrong, signer, stop)


def lie(encoded_block: bytes) -> bytes:
    """A stored block as a lying sync peer serves it: the same block with its seal damaged."""
    header, raw_transactions = parse_block(encoded_block)
    return rlp.encode([header.with_seal(FAKE_SEAL).encode(), list(raw_transactions)])


async def flood(misbehaviour: Misbehaviour, publish: Callable[[bytes], bool], chain_id: int, signer: Signer) -> None:
    """While in flood-invalid-tx: every FLOOD_SECONDS, FLOOD_BATCH transfers signed for another
    chain, each with a new nonce so none is a duplicate a peer would drop unseen."""
    nonce = 0
    while True:
        await asyncio.sleep(FLOOD_SECONDS)
        if misbehaviour.mode != "flood-invalid-tx":
            continue
        for _ in range(FLOOD_BATCH):
            publish(sign_legacy(chain_id + 1, nonce, 10**9, 21_000, Address(b"\x0f" * 20), 1, b"",
                                signer.private_key))
            nonce += 1
        misbehaviour.sent(FLOOD_BATCH)
