"""The PoEG engine's state: typed storage under one system address, inside the state root, written
only by the engine's finalize (no contract code runs there; transactions to it are the
engine's messages, see `consensus.poeg.messages`).

Stakes are elecoins the genesis bonds at this address; a slash moves stake into `slashed`
but leaves the coins where they are, so the total supply never changes. Reward credits are
energy (Wh): each prosumer pays ⌊δ·E_save⌋ and the miner coalition's members earn the shares,
so Σ paid = Σ earned + withheld over the chain (a reward withheld for a silent producer, 3.24,
is forfeited, not refunded)."""
from __future__ import annotations

from dataclasses import dataclass

import rlp

from vm.codec import decode as rlp_decode
from vm.native.storage import Mapping, Struct, Value
from vm.state import State
from vm.types import Address

POEG_ADDRESS = Address(bytes.fromhex("6772696400000000000000000000000000000003"))  # "grid" ‖ 3

NEXT_SLOT = Value(b"poeg.nextSlot", "uint64")
"""The first meter slot not yet settled; 0 until the first block starts the count."""
SCHEDULE = Value(b"poeg.schedule", "bytes")
"""The producer order in force (20 bytes per validator): the draw's first, then its fallbacks."""
STAKE = Mapping(b"poeg.stake", "uint256")
SLASHED = Mapping(b"poeg.slashed", "uint256")
SLASHED_TOTAL = Value(b"poeg.slashedTotal", "uint256")
EPOS = Mapping(b"poeg.epos", "uint256")
"""Validator → Σ of its bonded prosumers' proof scores in the last settled slot (Wh)."""
SCORE = Mapping(b"poeg.score", "uint256")
"""Prosumer → 𝒫𝒮_Si in the last settled slot (Wh)."""
PAID = Mapping(b"poeg.paidWh", "uint256")
EARNED = Mapping(b"poeg.earnedWh", "uint256")
WITHHELD_TOTAL = Value(b"poeg.withheldWh", "uint256")
"""Reward credits taken back from miner coalitions whose validator fell silent: Σ paid = Σ earned + this."""
EQUIVOCATED = Mapping(b"poeg.equivocated", "bool")
"""(validator, height) already punished for two blocks at that height."""
PENALTY = Struct(number="uint64", validator="address", reason="string", amount="uint256")
PENALTIES = Mapping(b"poeg.penalty", PENALTY)
PENALTY_COUNT = Value(b"poeg.penaltyCount", "uint64")
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


def schedule(state: State) -> tuple[Address, ...]:
    packed = SCHEDULE.read(state, POEG_ADDRESS)
    return tuple(Address(packed[i:i + 20]) for i in range(0, len(packed), 20))


def slash(state: State, validator: Address, ppm: int, number: int, reason: str) -> int:
    """Forfeit `ppm` of `validator`'s stake (3.24) and record why; returns the amount."""
    stake = STAKE.read(state, POEG_ADDRESS, validator)
    amount = stake * ppm // 1_000_000
    STAKE.write(state, POEG_ADDRESS, validator, stake - amount)
    SLASHED.write(state, POEG_ADDRESS, validator, SLASHED.read(state, POEG_ADDRESS, validator) + amount)
    SLASHED_TOTAL.write(state, POEG_ADDRESS, SLASHED_TOTAL.read(state, POEG_ADDRESS) + amount)
    count = PENALTY_COUNT.read(state, POEG_ADDRESS)
    PENALTIES.write(state, POEG_ADDRESS, count, {"number": number, "validator": validator.to_checksum(),
                                                  "reason": reason, "amount": amount})
    PENALTY_COUNT.write(state, POEG_ADDRESS, count + 1)
    return amount


def penalties(state: State, limit: int = 64) -> list[dict]:
    """The latest `limit` penalties, newest last."""
    count = PENALTY_COUNT.read(state, POEG_ADDRESS)
    return [PENALTIES.read(state, POEG_ADDRESS, k) for k in range(max(count - limit, 0), count)]
