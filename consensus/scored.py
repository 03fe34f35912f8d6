"""The skeleton of the score-based engines (DESIGN: PoEG, PoSOC): a few validators carry the chain,
scores earned from on-chain meter data order them, a silent producer is replaced and slashed,
and equivocation is evidence that slashes. The engines differ only in where the scores come from
(`ScoredEngine.settle` and the candidates it hands `draw_order`).

The order. A draw over the scores (weighted random sampling, eqs. 3.16 and 4.18) picks who
produces until the next draw; the next draw, with that validator excluded, the first fallback;
and so on: every validator once, the eligible ones (staked, and not passed over as silent by
the drawing block) the draws did not reach in a seeded shuffle, the others last. The order is
kept in state and carried in every header's extra data (checked against the parent's state on
execution). The k-th in the order may seal k·timeout
seconds after the first could, and fork choice weighs a block N − k, so the drawn producer's
block wins over its fallbacks'.

The seed of a draw made in block B is keccak(hash of block B − seedLag ‖ label): a block sealed
before B and not by B's producer. It is not commit-reveal: a producer of that earlier block who
could predict the draw could grind its own hash.

Penalties (thesis 3.24). A block sealed by the k-th in the order slashes the k before it
(`slashPpm` of their stake, recorded with the reason) and moves them to the end of the order;
`on_silent` lets the engine withhold their reward. Block 1 slashes nobody: before the chain
has started there is no turn to miss, and nodes boot at their own pace. Two children of one
parent sealed by one validator (two blocks for one slot: the order and the times live in the
parent), posted to the engine's address as EVIDENCE ‖ RLP[header, header] by anyone, slash once.
Two blocks at one height on different parents are not evidence: an honest producer seals again
at a height after a reorg moves it to another branch. Stakes are elecoins the genesis bonds at
the engine's address; a slash marks them forfeit but leaves them there, so the total supply
never changes.
"""
from __future__ import annotations

import logging
import threading
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import rlp

from consensus.engine import NEVER, ChainReader, Engine, HeaderFields, SealOptions, Signer, recover_sealer
from vm.blocks import Header, InvalidBlock, Receipt
from vm.codec import MalformedRLP, fields
from vm.codec import decode as rlp_decode
from vm.crypto import keccak256
from vm.native.storage import Mapping, Struct, Value
from consensus.sampling import derive_seed, shuffled, weighted_choice
from vm.state import State
from vm.types import Address

log = logging.getLogger("gridnode.consensus")

MAX_VALIDATORS = 64
"""The producer order rides in the header's extra data (2,048 bytes)."""
EVIDENCE = b"\x02"
"""First data byte of equivocation evidence sent to the engine's address."""

SCHEDULE = Value(b"engine.schedule", "bytes")
"""The producer order in force (20 bytes per validator)."""
STAKE = Mapping(b"engine.stake", "uint256")
SLASHED = Mapping(b"engine.slashed", "uint256")
SLASHED_TOTAL = Value(b"engine.slashedTotal", "uint256")
EQUIVOCATED = Mapping(b"engine.equivocated", "bool")
"""(validator, height) already punished for two blocks at that height."""
PENALTY = Struct(number="uint64", validator="address", reason="string", amount="uint256")
PENALTIES = Mapping(b"engine.penalty", PENALTY)
PENALTY_COUNT = Value(b"engine.penaltyCount", "uint64")


class ClaimError(ValueError):
    """Evidence or a message sent to the engine that does not hold: it changes nothing."""


@dataclass(frozen=True)
class ValidatorSet:
    """The genesis part every score-based engine shares."""

    validators: tuple[Address, ...]
    stakes: tuple[int, ...]
    period: int
    timeout: int = 2
    seed_lag: int = 2
    slash_ppm: int = 1_000_000

    KEYS = ("validators", "timeout", "seedLag", "slashPpm")

    @classmethod
    def from_params(cls, params: dict, block_time: int, engine: str, own_keys: set[str]) -> "ValidatorSet":
        """The shared keys of `engine`'s genesis params; any key neither shared nor in `own_keys` is refused."""
        known = {*cls.KEYS, *own_keys}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"{engine}: unknown params {unknown}; known: {sorted(known)}")
        raw = params.get("validators")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_VALIDATORS:
            raise ValueError(f"consensus.validators must list 1..{MAX_VALIDATORS} {{address, stake}} entries")
        validators, stakes = [], []
        for k, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise ValueError(f"consensus.validators[{k}] must be an object {{address, stake}}")
            validators.append(Address.from_hex(entry.get("address")))
            stakes.append(integer(entry.get("stake", 0), f"consensus.validators[{k}].stake"))
        if len(set(validators)) != len(validators):
            raise ValueError("consensus.validators lists a validator twice")
        slash_ppm = integer(params.get("slashPpm", 1_000_000), "consensus.slashPpm")
        if slash_ppm > 1_000_000:
            raise ValueError("consensus.slashPpm is a fraction of the stake: at most 1000000")
        return cls(tuple(validators), tuple(stakes), block_time,
                   integer(params.get("timeout", 2), "consensus.timeout", minimum=1),
                   integer(params.get("seedLag", 2), "consensus.seedLag", minimum=2), slash_ppm)


def bonded(params: dict, key: str, validators: Sequence[Address], limit: int) -> list[tuple[Address, Address, dict]]:
    """A genesis list of accounts bonded to validators (`consensus.<key>`: [{address, validator, …}];
    a missing validator means round-robin): (address, validator, the entry) of each, checked."""
    raw = params.get(key, [])
    if not isinstance(raw, list) or len(raw) > limit:
        raise ValueError(f"consensus.{key} must list at most {limit} {{address, validator, …}} entries")
    members = []
    for k, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ValueError(f"consensus.{key}[{k}] must be an object {{address, validator, …}}")
        validator = Address.from_hex(entry.get("validator", validators[k % len(validators)].to_checksum()))
        if validator not in validators:
            raise ValueError(f"consensus.{key}[{k}].validator is not a validator")
        members.append((Address.from_hex(entry.get("address")), validator, entry))
    if len({address for address, _, _ in members}) != len(members):
        raise ValueError(f"consensus.{key} lists an account twice")
    return members


def integer(value, name: str, minimum: int = 0, signed: bool = False) -> int:
    """A genesis integer (a JSON number or a decimal/0x string)."""
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or (not signed and value < minimum):
        raise ValueError(f"{name} must be an integer{'' if signed else f' ≥ {minimum}'}")
    return value


def _addresses(packed: bytes) -> list[Address]:
    return [Address(packed[i:i + 20]) for i in range(0, len(packed), 20)]


def evidence(header_a: Header, header_b: Header) -> bytes:
    """The data of an equivocation-evidence transaction to the engine's address."""
    return EVIDENCE + rlp.encode([header_a.encode(), header_b.encode()])


class ScoredEngine(Engine):
    """Validators ordered by score draws; see the module docstring. An engine names its system
    `address` and supplies `settle` (its score work each block) and, for its messages, `receive`."""

    address: Address

    def __init__(self, validator_set: ValidatorSet) -> None:
        self.set = validator_set

    # -- state ------------------------------------------------------------------------------------
    def schedule(self, state: State) -> tuple[Address, ...]:
        return tuple(_addresses(SCHEDULE.read(state, self.address)))

    def stake(self, state: State, validator: Address) -> int:
        return STAKE.read(state, self.address, validator)

    def penalties(self, state: State, limit: int = 64) -> list[dict]:
        """The latest `limit` penalties, newest last."""
        count = PENALTY_COUNT.read(state, self.address)
        return [PENALTIES.read(state, self.address, k) for k in range(max(count - limit, 0), count)]

    def slash(self, state: State, validator: Address, number: int, reason: str) -> int:
        """Forfeit `slashPpm` of `validator`'s stake (3.24) and record why; returns the amount."""
        at = self.address
        stake = STAKE.read(state, at, validator)
        amount = stake * self.set.slash_ppm // 1_000_000
        STAKE.write(state, at, validator, stake - amount)
        SLASHED.write(state, at, validator, SLASHED.read(state, at, validator) + amount)
        SLASHED_TOTAL.write(state, at, SLASHED_TOTAL.read(state, at) + amount)
        count = PENALTY_COUNT.read(state, at)
        PENALTIES.write(state, at, count, {"number": number, "validator": validator.to_checksum(),
                                           "reason": reason, "amount": amount})
        PENALTY_COUNT.write(state, at, count + 1)
        log.warning("slashed", extra={"number": number, "validator": validator.to_checksum(),
                                      "reason": reason, "amount": amount})
        return amount

    def validator_views(self, state: State) -> dict:
        """Order, stakes and penalties, for an engine's RPC view."""
        order = self.schedule(state)
        return {"producer": order[0].to_checksum() if order else None,
                "fallbackOrder": [v.to_checksum() for v in order[1:]],
                "slashedTotal": SLASHED_TOTAL.read(state, self.address), "penalties": self.penalties(state),
                "timeout": self.set.timeout, "seedLag": self.set.seed_lag}

    # -- the Engine interface ----------------------------------------------------------------------
    def genesis_state(self, state: State) -> None:
        SCHEDULE.write(state, self.address, b"".join(self.set.validators))
        for validator, stake in zip(self.set.validators, self.set.stakes):
            STAKE.write(state, self.address, validator, stake)
        account = state.get_account(self.address)
        state.set_account(self.address, type(account)(account.nonce, account.balance + sum(self.set.stakes)))

    def validators(self, chain: ChainReader, parent: Header) -> list[Address]:
        """The producer order for a child of the head (first the drawn producer, then its fallbacks)."""
        if parent.hash == chain.head.hash:
            return list(self.schedule(chain.state()))
        return list(self.set.validators)

    def authorized(self, chain: ChainReader, parent: Header, producer: Address) -> bool:
        return producer in self.set.validators

    def production_time(self, chain: ChainReader, parent: Header, producer: Address) -> int | None:
        if parent.hash != chain.head.hash:
            return None  # the order lives in the parent's state: build only on the head
        order = self.schedule(chain.state())
        if producer not in order:
            return None
        return parent.timestamp + self.set.period + order.index(producer) * self.set.timeout

    def prepare(self, chain: ChainReader, parent: Header, producer: Address, timestamp: int,
                state: State) -> HeaderFields:
        order = self.schedule(state)
        position = order.index(producer) if producer in order else len(order)
        return HeaderFields(difficulty=max(len(order) - position, 1), extra_data=b"".join(order))

    def seal(self, header: Header, signer: Signer, stop: threading.Event = NEVER,
             options: SealOptions = SealOptions()) -> Header | None:
        return header.with_seal(signer.sign(header.seal_hash))

    def verify_header(self, chain: ChainReader, header: Header, parent: Header) -> None:
        """Seal, producer and timing against the order the header claims; execution then checks
        the claim against the parent's state (`prepare`)."""
        sealer = recover_sealer(header, self.name)
        if sealer != header.producer:
            raise InvalidBlock(f"{self.name}: sealed by {sealer.to_checksum()} but names "
                               f"{header.producer.to_checksum()}")
        extra = header.extra_data
        order = _addresses(extra)
        if len(extra) % 20 or sorted(order) != sorted(self.set.validators):
            raise InvalidBlock(f"{self.name}: extra data must be the producer order, every validator once")
        position = order.index(sealer)
        if header.difficulty != len(order) - position:
            raise InvalidBlock(f"{self.name}: wrong difficulty {header.difficulty}, want {len(order) - position}")
        earliest = parent.timestamp + self.set.period + position * self.set.timeout
        if header.timestamp < earliest:
            raise InvalidBlock(f"{self.name}: {sealer.to_checksum()} is producer #{position} of the order and may "
                               f"seal at {earliest}, not {header.timestamp}: wrong producer for the slot")

    def weight(self, header: Header) -> int:
        return header.difficulty

    def finalize(self, chain: ChainReader, header: Header, state: State, transactions: tuple,
                 receipts: tuple[Receipt, ...]) -> None:
        """Slash the silent, apply the messages sent to the engine's address, then the engine's own work."""
        if header.number > 1:  # the chain's start is no turn anyone could miss: nodes boot at their own pace
            self._slash_silent(state, header, self.skipped(header))
        own = self.own_transaction(header, transactions)
        for tx, receipt in zip(transactions, receipts):
            if tx.to == self.address and receipt.succeeded and tx is not own:
                self._apply_message(header, state, tx)
        self.settle(chain, header, state, own)

    def _slash_silent(self, state: State, header: Header, silent: list[Address]) -> None:
        offenders = [v for v in silent if self.stake(state, v) > 0]
        for validator in offenders:
            self.slash(state, validator, header.number, "silent producer")
            self.on_silent(state, validator)
        if offenders:
            order = self.schedule(state)
            SCHEDULE.write(state, self.address, b"".join([v for v in order if v not in offenders] + offenders))

    def _apply_message(self, header: Header, state: State, tx) -> None:
        try:
            verdict = self._equivocation(state, tx.data[1:]) if tx.data[:1] == EVIDENCE else \
                self.receive(state, header, tx)
        except (ClaimError, MalformedRLP) as error:
            log.info("ignored message", extra={"tx": "0x" + tx.hash.hex(), "reason": str(error)})
            return
        if verdict is not None:
            self.slash(state, verdict[0], header.number, verdict[1])

    def _equivocation(self, state: State, body: bytes) -> tuple[Address, str]:
        raw_a, raw_b = fields(rlp_decode(body, max_depth=2), 2, "evidence")
        try:
            a, b = Header.decode(raw_a), Header.decode(raw_b)
            sealer_a, sealer_b = recover_sealer(a, self.name), recover_sealer(b, self.name)
        except (InvalidBlock, ValueError, TypeError) as error:
            raise ClaimError(f"evidence header: {error}") from None
        if a.parent_hash != b.parent_hash or a.hash == b.hash:
            raise ClaimError("evidence must be two different children of one parent")
        if sealer_a != sealer_b or sealer_a not in self.set.validators:
            raise ClaimError("evidence headers are not sealed by one validator")
        if EQUIVOCATED.read(state, self.address, sealer_a, a.number):
            raise ClaimError(f"equivocation at height {a.number} was already punished")
        EQUIVOCATED.write(state, self.address, sealer_a, a.number, True)
        return sealer_a, f"equivocation at height {a.number}"

    def missed_producer(self, chain: ChainReader, header: Header) -> Address | None:
        """The slot's drawn producer when a fallback sealed it (finalize slashes it as silent)."""
        skipped = self.skipped(header)
        return skipped[0] if skipped and header.number > 1 else None

    def equivocation_evidence(self, first: Header, second: Header) -> tuple[Address, bytes] | None:
        if first.parent_hash != second.parent_hash or first.hash == second.hash or first.producer != second.producer:
            return None
        return (self.address, evidence(first, second)) if first.producer in self.set.validators else None

    # -- draws -------------------------------------------------------------------------------------
    def seed(self, chain: ChainReader, parent: Header, label: int) -> bytes:
        """keccak(hash of the block seedLag below the drawing block ‖ label), from that block's
        `parent`; the genesis hash near the start."""
        ancestor = parent
        for _ in range(self.set.seed_lag - 1):
            if ancestor.number == 0:
                break
            ancestor = chain.header_by_hash(ancestor.parent_hash)
        return keccak256(ancestor.hash + label.to_bytes(32, "big"))

    def eligible(self, state: State, skipped: Sequence[Address] = ()) -> set[Address]:
        """Validators a draw may pick: staked, and not passed over as silent by the drawing block
        (a partly slashed one keeps stake, but not this draw)."""
        return {v for v in self.set.validators if self.stake(state, v) > 0 and v not in skipped}

    @staticmethod
    def skipped(header: Header) -> list[Address]:
        """The validators the order in `header` put before its producer: silent for this block."""
        order = _addresses(header.extra_data)
        return order[:order.index(header.producer)] if header.producer in order else order

    @staticmethod
    def draws(eligible: set[Address], candidates: Sequence[tuple[Address, int]], seed: bytes) -> list[int]:
        """Repeated WRS draws (eqs. 3.16, 4.18) over weighted candidates (validator, score) — a
        coalition or an EV each — whose validator is `eligible`, each draw excluding the drawn
        validator's candidates: the indices drawn, in order. The first is `weighted_choice` over
        the eligible weights with derive_seed(seed, 0), which is how the engines draw their miner."""
        weights = [w if owner in eligible else 0 for owner, w in candidates]
        drawn: list[int] = []
        while any(weights):
            index = weighted_choice(weights, derive_seed(seed, len(drawn)))
            drawn.append(index)
            weights = [0 if candidates[k][0] == candidates[index][0] else w for k, w in enumerate(weights)]
        return drawn

    def draw_order(self, eligible: set[Address], candidates: Sequence[tuple[Address, int]], seed: bytes) -> list[Address]:
        """The producer order: the drawn candidates' validators (`draws`), then the eligible
        validators not drawn, shuffled; then the rest, in genesis order."""
        order = [candidates[k][0] for k in self.draws(eligible, candidates, seed)]
        rest = [v for v in self.set.validators if v in eligible and v not in order]
        order.extend(rest[k] for k in shuffled(len(rest), derive_seed(seed, 1 << 32)))
        order.extend(v for v in self.set.validators if v not in order)
        return order

    def write_order(self, state: State, order: Sequence[Address]) -> None:
        SCHEDULE.write(state, self.address, b"".join(order))

    # -- what each engine supplies -----------------------------------------------------------------
    def own_transaction(self, header: Header, transactions: tuple):
        """The block's transaction that carries the engine's own work (a settlement), if any."""
        return None

    @abstractmethod
    def settle(self, chain: ChainReader, header: Header, state: State, own) -> None:
        """The engine's score work for this block (after penalties and claims); raise InvalidBlock
        if the block breaks its rules."""

    def receive(self, state: State, header: Header, tx) -> tuple[Address, str] | None:
        """An engine-specific message sent to its address (a challenge, a model commitment): apply
        it and return (offender, reason) to slash, or None; ClaimError if it does not hold."""
        raise ClaimError(f"unknown message kind 0x{tx.data[:1].hex()}")

    def on_silent(self, state: State, validator: Address) -> None:
        """After `validator` was slashed as silent (e.g. withhold its reward)."""
