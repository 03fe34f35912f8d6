"""What a transaction to `POEG_ADDRESS` says: its first data byte is the kind.

* SETTLE ‖ settlement: the slot's settlement, only as its producer's last transaction in a
  block (`settlement.encode`); checked strictly, a wrong one invalidates the block.
* EVIDENCE ‖ RLP[header_a, header_b] (`consensus.scored`): two headers at one height sealed by one validator.
* CHALLENGE ‖ RLP[slot, a, b, certificate]: coalitions a and b of the last settlement, merged
  with the certified plan of their union, leave no member's proof score lower and the total
  higher: the partition was not stable (Definitions 2–4), so its producer is slashed.

Anyone may send evidence or a challenge; one that does not check out changes nothing."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import rlp

from consensus.poeg import certificate as lp
from consensus.poeg import ledger
from consensus.poeg.ledger import POEG_ADDRESS
from consensus.poeg.settlement import plan_of
from consensus.scored import ClaimError
from consensus.rules.coalition_lp import coalition_instance
from consensus.rules.community import Community
from consensus.rules.line_loss import IntLosses
from consensus.rules.poeg import member_savings, singleton_score
from vm.codec import fields, uint
from vm.codec import decode as rlp_decode
from vm.state import State
from vm.types import Address

if TYPE_CHECKING:
    from consensus.poeg.engine import ProofOfEnergyGeneration

SETTLE, CHALLENGE = b"\x01", b"\x03"
"""0x02 is the skeleton's equivocation evidence (`consensus.scored.EVIDENCE`)."""


def challenge(slot: int, first: int, second: int, certificate: lp.Certificate) -> bytes:

    return CHALLENGE + rlp.encode([slot, first, second, lp.encode(certificate)])


def apply_claim(engine: "ProofOfEnergyGeneration", state: State, data: bytes) -> tuple[Address, str]:
    """Check a challenge and mark it used; returns (offender, reason) to slash."""
    if data[:1] == CHALLENGE:
        return _instability(engine, state, data[1:])
    raise ClaimError(f"unknown message kind 0x{data[:1].hex()}")


def _instability(engine: "ProofOfEnergyGeneration", state: State, body: bytes) -> tuple[Address, str]:
    slot_item, a_item, b_item, cert_item = fields(rlp_decode(body, max_depth=4), 4, "challenge")
    slot, first, second = uint(slot_item, "slot", 8), uint(a_item, "a", 4), uint(b_item, "b", 4)
    record = ledger.read_record(state)
    if record is None or record.slot != slot:
        raise ClaimError("only the last settlement may be challenged")
    if record.challenged:
        raise ClaimError(f"slot {slot} was already challenged")
    if not first < second < len(record.coalitions):
        raise ClaimError("a challenge names two coalitions of the settlement, a < b")
    if not isinstance(cert_item, bytes):
        raise ClaimError("the union's certificate must be a byte string")
    try:
        cert = lp.decode(cert_item)
        union = sorted(record.coalitions[first] + record.coalitions[second])
        community = Community(record.production_wh, record.consumption_wh,
                              tuple(p.x_m for p in engine.config.prosumers), tuple(p.y_m for p in engine.config.prosumers))
        instance = coalition_instance(community, union, engine.config.loss)
        lp.verify(cert, instance.surplus, instance.deficit, instance.gains)
    except lp.CertificateError as error:
        raise ClaimError(f"the union's certificate fails: {error}") from None
    losses = IntLosses(community, engine.config.loss)
    savings = member_savings(plan_of(instance, union, cert), losses)
    merged = {i: singleton_score(losses, i) + savings[i] for i in union}
    if any(merged[i] < record.scores[i] for i in union):
        raise ClaimError("the union lowers some member's proof score: not a profitable merge")
    if sum(merged.values()) <= sum(record.scores[i] for i in union):
        raise ClaimError("the union does not raise the total proof score")
    ledger.LAST.write(state, POEG_ADDRESS, dataclasses.replace(record, challenged=True).encode())
    return record.producer, f"unstable settlement of slot {slot} (coalitions {first} and {second} merge profitably)"
