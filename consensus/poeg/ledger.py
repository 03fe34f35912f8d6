"""The PoEG engine's settlement state: typed storage under its system address, inside the state
root, written only by the engine's finalize (no contract code runs there; transactions to it
are the engine's messages, see `consensus.poeg.messages`). The order, stakes and penalties are
the skeleton's (`consensus.scored`), under the same address. Reward credits are
energy (Wh): each prosumer pays ⌊δ·E_save⌋ and the miner coalition's members earn the shares,
so Σ paid = Σ earned + withheld over the chain (a reward withheld for a silent producer, 3.24,
is forfeited, not refunded)."""
from __future__ import annotations

from dataclasses import dataclass

import rlp

from vm.codec import decode as rlp_decode
from vm.native.storage import Mapping, Value
from vm.state import State
from vm.types import Address

POEG_ADDRESS = Address(bytes.fromhex("6772696400000000000000000000000000000003"))  # "grid" ‖ 3

NEXT_SLOT = Value(b"poeg.nextSlot", "uint64")
"""The first meter slot not yet settled; 0 until the first block starts the count."""
EPOS = Mapping(b"poeg.epos", "uint256")
"""Validator → Σ of its bonded prosumers' proof scores in the last settled slot (Wh)."""
SCORE = Mapping(b"poeg.score", "uint256")
"""Prosumer → 𝒫𝒮_Si in the last settled slot (Wh)."""
PAID = Mapping(b"poeg.paidWh", "uint256")
EARNED = Mapping(b"poeg.earnedWh", "uint256")
WITHHELD_TOTAL = Value(b"poeg.withheldWh", "uint256")
"""Reward credits taken back from miner coalitions whose validator fell silent: Σ paid = Σ earned + this."""
LAST = Value(b"poeg.lastSettlement", "bytes")


@dataclass(frozen=True)
class SlotRecord:
    """The last settlement, kept for the RPC and for stability challenges against it."""

    slot: int
    number: int
    producer: Address
    production_wh: tuple[int, ...]
    consumption_wh: tuple[int, ...]
    coalitions: tuple[tuple[int, ...], ...]
    scores: tuple[int, ...]
    miner: int | None
    shares: tuple[tuple[int, int], ...]
    challenged: bool = False
    withheld: bool = False
    """The miner coalition's shares were taken back: its validator was slashed as silent."""

    def encode(self) -> bytes:
        return rlp.encode([self.slot, self.number, bytes(self.producer), list(self.production_wh),
                           list(self.consumption_wh), [list(c) for c in self.coalitions], list(self.scores),
                           [] if self.miner is None else [self.miner], [list(s) for s in self.shares],
                           int(self.challenged), int(self.withheld)])

    @classmethod
    def decode(cls, data: bytes) -> "SlotRecord":
        slot, number, producer, production, consumption, coalitions, scores, miner, shares, challenged, withheld = \
            rlp_decode(data, max_depth=3)
        num = lambda b: int.from_bytes(b, "big")  # noqa: E731 - written by finalize, so canonical
        return cls(num(slot), num(number), Address(producer), tuple(map(num, production)),
                   tuple(map(num, consumption)), tuple(tuple(map(num, c)) for c in coalitions),
                   tuple(map(num, scores)), num(miner[0]) if miner else None,
                   tuple((num(a), num(b)) for a, b in shares), bool(num(challenged)), bool(num(withheld)))


def read_record(state: State) -> SlotRecord | None:
    data = LAST.read(state, POEG_ADDRESS)
    return SlotRecord.decode(data) if data else None
