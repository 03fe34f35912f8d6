"""Proof of energy generation (thesis ch. 3) as the chain's consensus.

Who produces. A few validators carry the chain; every prosumer is bonded to one (genesis).
Settlement slots are the meters' slots (`slot = timestamp // slotSeconds`). Once a slot has
ended, the next block must settle it: its producer posts the partition, the certified plans,
the scores and the reward shares as the block's last transaction, to `POEG_ADDRESS`
(`messages.SETTLE`), and every validator checks it in integers (`settlement.verify`). A block
that is due to settle and does not, or settles wrongly, is invalid. The settlement's coalition
scores are the weights of the WRS draw (eq. 3.16): the drawn coalition's validator (the one its
members bond the most score to) produces until the next settlement, then the next draw with
that validator's coalitions excluded, and so on: the producer order, written to state and
carried in every header's extra data (checked against the parent's state on execution).

The seed. The draw at a settlement in block B uses keccak(hash of block B − seedLag ‖ slot):
a block sealed before B, by a producer that could not know the slot's last readings when it
sealed. It is not commit-reveal: a producer of block B − seedLag that could predict the
settlement could grind its own block hash; seedLag ≥ 2 keeps the settling producer from
choosing its own seed. Commit-reveal among validators is the stronger choice, not built.

Silent producers (3.24). The k-th in the order may seal `k · timeout` seconds after the first
could; a block sealed by the k-th slashes the k before it (`slashPpm` of their stake, recorded
with the reason), moves them to the end of the order, and withholds the last settlement's reward
from its miner coalition if one of them was the validator that coalition drew. A validator
without stake goes to the end of every later order. Fork choice weighs a block by N − k, so the drawn producer's block wins.

Equivocation. Two headers at one height sealed by one validator are evidence anyone may post
(`messages.EVIDENCE`); the first posting slashes. Stability is optimistic: anyone may post a
union plan for two coalitions of the last settlement in which no member's score falls and
the total rises (`messages.CHALLENGE`); if it checks out the settling producer is slashed.
Invalid evidence or challenges change nothing (the transaction still pays its gas).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass

from consensus.engine import (NEVER, ChainReader, Engine, EngineServices, HeaderFields, SealOptions, Signer,
                              recover_sealer)
from consensus.poeg import ledger, messages, settlement
from consensus.poeg.ledger import POEG_ADDRESS
from consensus.rules.community import Community
from consensus.rules.line_loss import LossModel
from consensus.sampling import derive_seed, shuffled, weighted_choice
from vm.blocks import Header, InvalidBlock, Receipt
from vm.crypto import keccak256
from vm.environment import BlockEnvironment
from vm.gas import intrinsic_gas
from vm.state import State
from vm.transactions import decode_transaction, sign_legacy
from vm.types import Address

log = logging.getLogger("gridnode.poeg")

MAX_VALIDATORS = 64
"""The producer order rides in the header's extra data (2,048 bytes)."""


@dataclass(frozen=True)
class Prosumer:
    address: Address
    x_m: int
    y_m: int
    validator: Address


@dataclass(frozen=True)
class PoEGConfig:
    validators: tuple[Address, ...]
    stakes: tuple[int, ...]
    prosumers: tuple[Prosumer, ...]
    period: int
    timeout: int = 2
    delta_ppm: int = 100_000
    loss: LossModel = LossModel()
    seed_lag: int = 2
    slash_ppm: int = 1_000_000

    @classmethod
    def from_params(cls, params: dict, block_time: int) -> "PoEGConfig":
        known = {"validators", "prosumers", "timeout", "deltaPpm", "lossModel", "seedLag", "slashPpm"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"poeg: unknown params {unknown}; known: {sorted(known)}")
        raw_validators = params.get("validators")
        if not isinstance(raw_validators, list) or not 1 <= len(raw_validators) <= MAX_VALIDATORS:
            raise ValueError(f"consensus.validators must list 1..{MAX_VALIDATORS} {{address, stake}} entries")
        validators, stakes = [], []
        for k, entry in enumerate(raw_validators):
            if not isinstance(entry, dict):
                raise ValueError(f"consensus.validators[{k}] must be an object {{address, stake}}")
            validators.append(Address.from_hex(entry.get("address")))
            stakes.append(_integer(entry.get("stake", 0), f"consensus.validators[{k}].stake"))
        if len(set(validators)) != len(validators):
            raise ValueError("consensus.validators lists a validator twice")
        raw_prosumers = params.get("prosumers", [])
        if not isinstance(raw_prosumers, list) or len(raw_prosumers) > settlement.MAX_PROSUMERS:
            raise ValueError(f"consensus.prosumers must list at most {settlement.MAX_PROSUMERS} prosumers")
        prosumers = []
        for k, entry in enumerate(raw_prosumers):
            if not isinstance(entry, dict):
                raise ValueError(f"consensus.prosumers[{k}] must be an object {{address, x, y, validator}}")
            validator = Address.from_hex(entry.get("validator", validators[k % len(validators)].to_checksum()))
            if validator not in validators:
                raise ValueError(f"consensus.prosumers[{k}].validator is not a validator")
            prosumers.append(Prosumer(Address.from_hex(entry.get("address")),
                                      _integer(entry.get("x", 0), f"consensus.prosumers[{k}].x", signed=True),
                                      _integer(entry.get("y", 0), f"consensus.prosumers[{k}].y", signed=True),
                                      validator))
        if len({p.address for p in prosumers}) != len(prosumers):
            raise ValueError("consensus.prosumers lists a prosumer twice")
        loss = params.get("lossModel", {})
        if not isinstance(loss, dict) or set(loss) - {"basePpm", "perKmPpm", "capPpm"}:
            raise ValueError("consensus.lossModel takes basePpm, perKmPpm, capPpm (integers, ppm)")
        model = LossModel(loss.get("basePpm", 0), loss.get("perKmPpm", 2_700), loss.get("capPpm", 56_000))
        delta = _integer(params.get("deltaPpm", 100_000), "consensus.deltaPpm")
        if not 0 < delta <= 1_000_000:
            raise ValueError("consensus.deltaPpm (δ of eq. 3.23) must lie in 1..1000000")
        slash_ppm = _integer(params.get("slashPpm", 1_000_000), "consensus.slashPpm")
        if slash_ppm > 1_000_000:
            raise ValueError("consensus.slashPpm is a fraction of the stake: at most 1000000")
        return cls(tuple(validators), tuple(stakes), tuple(prosumers), block_time,
                   _integer(params.get("timeout", 2), "consensus.timeout", minimum=1), delta, model,
                   _integer(params.get("seedLag", 2), "consensus.seedLag", minimum=2), slash_ppm)


def _integer(value, name: str, minimum: int = 0, signed: bool = False) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or (not signed and value < minimum):
        raise ValueError(f"{name} must be an integer{'' if signed else f' ≥ {minimum}'}")
    return value


class ProofOfEnergyGeneration(Engine):
    name = "poeg"

    def __init__(self, config: PoEGConfig, services: EngineServices = EngineServices()) -> None:
        if services.reading is None or services.slot_seconds is None:
            raise ValueError("poeg reads the meters: the genesis must place a Meters contract")
        self.config = config
        self.services = services
        self.slot_seconds = services.slot_seconds
        self._bond = {p.address: p.validator for p in config.prosumers}

    # -- genesis and the producer order ---------------------------------------------------------
    def genesis_state(self, state: State) -> None:
        ledger.SCHEDULE.write(state, POEG_ADDRESS, b"".join(self.config.validators))
        for validator, stake in zip(self.config.validators, self.config.stakes):
            ledger.STAKE.write(state, POEG_ADDRESS, validator, stake)
        account = state.get_account(POEG_ADDRESS)
        state.set_account(POEG_ADDRESS, type(account)(account.nonce, account.balance + sum(self.config.stakes)))

    def validators(self, chain: ChainReader, parent: Header) -> list[Address]:
        """The producer order for a child of the head (first the drawn producer, then its fallbacks)."""
        if parent.hash == chain.head.hash:
            return list(ledger.schedule(chain.state()))
        return list(self.config.validators)

    def authorized(self, chain: ChainReader, parent: Header, producer: Address) -> bool:
        return producer in self.config.validators

    def production_time(self, chain: ChainReader, parent: Header, producer: Address) -> int | None:
        if parent.hash != chain.head.hash:
            return None  # the order lives in the parent's state: build only on the head
        order = ledger.schedule(chain.state())
        if producer not in order:
            return None
        return parent.timestamp + self.config.period + order.index(producer) * self.config.timeout

    def prepare(self, chain: ChainReader, parent: Header, producer: Address, timestamp: int,
                state: State) -> HeaderFields:
        order = ledger.schedule(state)
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
            raise InvalidBlock(f"poeg: sealed by {sealer.to_checksum()} but names {header.producer.to_checksum()}")
        extra = header.extra_data
        order = [Address(extra[i:i + 20]) for i in range(0, len(extra), 20)]
        if len(extra) % 20 or sorted(order) != sorted(self.config.validators):
            raise InvalidBlock("poeg: extra data must be the producer order, every validator once")
        position = order.index(sealer)
        if header.difficulty != len(order) - position:
            raise InvalidBlock(f"poeg: wrong difficulty {header.difficulty}, want {len(order) - position}")
        earliest = parent.timestamp + self.config.period + position * self.config.timeout
        if header.timestamp < earliest:
            raise InvalidBlock(f"poeg: {sealer.to_checksum()} is producer #{position} of the order and may seal "
                               f"at {earliest}, not {header.timestamp}: wrong producer for the slot")

    def weight(self, header: Header) -> int:
        return header.difficulty

    # -- the block's engine work ------------------------------------------------------------------
    def finalize(self, chain: ChainReader, header: Header, state: State, transactions: tuple,
                 receipts: tuple[Receipt, ...]) -> None:
        order = [Address(header.extra_data[i:i + 20]) for i in range(0, len(header.extra_data), 20)]
        self._slash_silent(state, header, order[:order.index(header.producer)])
        settling = self._settlement_tx(header, transactions)
        for tx, receipt in zip(transactions, receipts):
            if tx.to == POEG_ADDRESS and receipt.succeeded and tx is not settling:
                self._claim(chain, header, state, tx)
        due = ledger.NEXT_SLOT.read(state, POEG_ADDRESS) or header.timestamp // self.slot_seconds
        ledger.NEXT_SLOT.write(state, POEG_ADDRESS, due)
        ended = due < header.timestamp // self.slot_seconds
        if settling is None:
            if ended:
                raise InvalidBlock(f"poeg: slot {due} has ended and this block does not settle it")
            return
        if not ended:
            raise InvalidBlock(f"poeg: slot {due} has not ended; it cannot be settled yet")
        community = self.community(state, due)
        seed = self.seed(chain, chain.header_by_hash(header.parent_hash), due)
        try:
            posted = settlement.decode(settling.data[1:])
            outcome = settlement.verify(posted, due, community, self.config.loss, self.config.delta_ppm, seed)
        except settlement.SettlementError as error:
            raise InvalidBlock(f"poeg: slot {due} settlement rejected: {error}") from None
        self._record(state, header, due, community, posted, outcome, seed)

    def _slash_silent(self, state: State, header: Header, silent: list[Address]) -> None:
        """Slash each staked validator the order put before this block's producer, and move it to
        the end of the order, so the next block does not wait for it again."""
        offenders = [v for v in silent if ledger.STAKE.read(state, POEG_ADDRESS, v) > 0]
        for validator in offenders:
            amount = ledger.slash(state, validator, self.config.slash_ppm, header.number, "silent producer")
            log.warning("slashed silent producer", extra={"number": header.number,
                                                          "validator": validator.to_checksum(), "amount": amount})
        for validator in offenders:
            self._withhold(state, validator)
        if offenders:
            order = ledger.schedule(state)
            ledger.SCHEDULE.write(state, POEG_ADDRESS, b"".join([v for v in order if v not in offenders] + offenders))

    def _withhold(self, state: State, silent: Address) -> None:
        """Take back the last settlement's reward from its miner coalition if `silent` is the
        validator that coalition drew (3.24: the reward is withheld and the miner reselected)."""
        record = ledger.read_record(state)
        if record is None or record.miner is None or record.withheld:
            return
        if self.coalition_validator(record.coalitions[record.miner], record.scores) != silent:
            return
        at = POEG_ADDRESS
        for index, share in record.shares:
            address = self.config.prosumers[index].address
            ledger.EARNED.write(state, at, address, ledger.EARNED.read(state, at, address) - share)
        ledger.WITHHELD_TOTAL.write(state, at, ledger.WITHHELD_TOTAL.read(state, at) + sum(s for _, s in record.shares))
        ledger.LAST.write(state, at, dataclasses.replace(record, withheld=True).encode())

    @staticmethod
    def _settlement_tx(header: Header, transactions: tuple):
        """The block's settlement: its last transaction, if the producer sent it to POEG_ADDRESS as one."""
        if not transactions:
            return None
        last = transactions[-1]
        if last.to == POEG_ADDRESS and last.sender == header.producer and last.data[:1] == messages.SETTLE:
            return last
        return None

    def community(self, state: State, slot: int) -> Community:
        """The slot's readings (a prosumer without one has a zero balance) at the genesis positions."""
        readings = [self.services.reading(state, p.address, slot) or (0, 0) for p in self.config.prosumers]
        return Community(tuple(r[0] for r in readings), tuple(r[1] for r in readings),
                         tuple(p.x_m for p in self.config.prosumers), tuple(p.y_m for p in self.config.prosumers))

    def seed(self, chain: ChainReader, parent: Header, slot: int) -> bytes:
        """keccak(hash of the block seedLag below the settling block ‖ slot), from its `parent`;
        the genesis hash near the start."""
        ancestor = parent
        for _ in range(self.config.seed_lag - 1):
            if ancestor.number == 0:
                break
            ancestor = chain.header_by_hash(ancestor.parent_hash)
        return keccak256(ancestor.hash + slot.to_bytes(32, "big"))

    def _record(self, state: State, header: Header, slot: int, community: Community,
                posted: settlement.Settlement, outcome: settlement.Outcome, seed: bytes) -> None:
        at = POEG_ADDRESS
        epos: dict[Address, int] = dict.fromkeys(self.config.validators, 0)
        for prosumer, score, paid in zip(self.config.prosumers, outcome.scores, outcome.payments):
            ledger.SCORE.write(state, at, prosumer.address, score)
            ledger.PAID.write(state, at, prosumer.address, ledger.PAID.read(state, at, prosumer.address) + paid)
            epos[prosumer.validator] += score
        for index, share in outcome.shares.items():
            address = self.config.prosumers[index].address
            ledger.EARNED.write(state, at, address, ledger.EARNED.read(state, at, address) + share)
        for validator, credited in epos.items():
            ledger.EPOS.write(state, at, validator, credited)
        coalitions = tuple(c.members for c in posted.coalitions)
        ledger.SCHEDULE.write(state, at, b"".join(self.draw_order(state, coalitions, outcome, seed)))
        ledger.NEXT_SLOT.write(state, at, slot + 1)
        ledger.LAST.write(state, at, ledger.SlotRecord(
            slot, header.number, header.producer, community.production_wh, community.consumption_wh, coalitions,
            outcome.scores, outcome.miner, tuple(sorted(outcome.shares.items()))).encode())

    def coalition_validator(self, members: tuple[int, ...], scores: tuple[int, ...]) -> Address:
        """The validator a coalition's members bond the most score to (ties: the earlier in genesis)."""
        bonded = dict.fromkeys(self.config.validators, 0)
        for i in members:
            bonded[self.config.prosumers[i].validator] += scores[i]
        return max(self.config.validators, key=lambda v: (bonded[v], -self.config.validators.index(v)))

    def draw_order(self, state: State, coalitions: tuple[tuple[int, ...], ...], outcome: settlement.Outcome,
                   seed: bytes) -> list[Address]:
        """The producer order: repeated WRS draws over the coalitions whose validator still has
        stake, each draw excluding the drawn validator's coalitions (3.16, 3.24's reselection);
        then the staked validators no coalition drew, in a seeded shuffle; then the unstaked."""
        staked = [v for v in self.config.validators if ledger.STAKE.read(state, POEG_ADDRESS, v) > 0]
        owner = [self.coalition_validator(c, outcome.scores) for c in coalitions]
        weights = [w if owner[k] in staked else 0 for k, w in enumerate(outcome.coalition_scores)]
        order: list[Address] = []
        draw = 0
        while any(weights):
            chosen = owner[weighted_choice(weights, derive_seed(seed, draw))]
            draw += 1
            order.append(chosen)
            weights = [0 if owner[k] == chosen else w for k, w in enumerate(weights)]
        rest = [v for v in staked if v not in order]
        order.extend(rest[k] for k in shuffled(len(rest), derive_seed(seed, 1 << 32)))
        order.extend(v for v in self.config.validators if v not in order)
        return order

    # -- evidence and challenges -----------------------------------------------------------------
    def _claim(self, chain: ChainReader, header: Header, state: State, tx) -> None:
        try:
            offender, reason = messages.apply_claim(self, state, tx.data)
        except messages.ClaimError as error:
            log.info("ignored poeg claim", extra={"tx": "0x" + tx.hash.hex(), "reason": str(error)})
            return
        amount = ledger.slash(state, offender, self.config.slash_ppm, header.number, reason)
        log.warning("slashed", extra={"number": header.number, "validator": offender.to_checksum(),
                                      "reason": reason, "amount": amount})

    # -- the producer's side ---------------------------------------------------------------------
    def system_transactions(self, chain: ChainReader, parent: Header, state: State, env: BlockEnvironment,
                            signer: Signer) -> list[bytes]:
        """The settlement, when the block `env` describes must carry one."""
        due = ledger.NEXT_SLOT.read(state, POEG_ADDRESS) or env.timestamp // self.slot_seconds
        if due >= env.timestamp // self.slot_seconds:
            return []
        community = self.community(state, due)
        partition = self.services.partition or settlement.singletons
        proposal = settlement.propose(due, community, self.config.loss, self.config.delta_ppm,
                                      self.seed(chain, parent, due), partition(community, self.config.loss))
        data = messages.SETTLE + settlement.encode(proposal)
        raw = sign_legacy(env.chain_id, state.get_account(signer.address).nonce, env.base_fee, intrinsic_gas(data),
                          POEG_ADDRESS, 0, data, signer.private_key)
        decode_transaction(raw)  # the envelope must be one every peer decodes
        return [raw]

    # -- the RPC view ----------------------------------------------------------------------------
    def status(self, chain: ChainReader, state: State) -> dict:
        at = POEG_ADDRESS
        head = chain.head
        record = ledger.read_record(state)
        order = ledger.schedule(state)

        def validator_view(v: Address) -> dict:
            return {"address": v.to_checksum(), "stake": ledger.STAKE.read(state, at, v),
                    "slashed": ledger.SLASHED.read(state, at, v), "eposStake": ledger.EPOS.read(state, at, v)}

        view = {
            "engine": self.name, "blockNumber": head.number, "slotSeconds": self.slot_seconds,
            "currentSlot": head.timestamp // self.slot_seconds,
            "nextSlotToSettle": ledger.NEXT_SLOT.read(state, at),
            "producer": order[0].to_checksum() if order else None,
            "fallbackOrder": [v.to_checksum() for v in order[1:]],
            "validators": [validator_view(v) for v in self.config.validators],
            "slashedTotal": ledger.SLASHED_TOTAL.read(state, at),
            "withheldWh": ledger.WITHHELD_TOTAL.read(state, at),
            "penalties": ledger.penalties(state),
            "deltaPpm": self.config.delta_ppm, "timeout": self.config.timeout, "seedLag": self.config.seed_lag,
            "prosumers": [{"address": p.address.to_checksum(), "validator": p.validator.to_checksum(),
                           "score": ledger.SCORE.read(state, at, p.address),
                           "paidWh": ledger.PAID.read(state, at, p.address),
                           "earnedWh": ledger.EARNED.read(state, at, p.address)} for p in self.config.prosumers],
            "lastSettlement": None,
        }
        if record is not None:
            scores = record.scores
            view["lastSettlement"] = {
                "slot": record.slot, "blockNumber": record.number, "producer": record.producer.to_checksum(),
                "coalitions": [{"members": list(c), "score": sum(scores[i] for i in c),
                                "validator": self.coalition_validator(c, scores).to_checksum()}
                               for c in record.coalitions],
                "minerCoalition": record.miner, "reward": sum(s for _, s in record.shares),
                "shares": {self.config.prosumers[i].address.to_checksum(): s for i, s in record.shares},
                "challenged": record.challenged, "withheld": record.withheld}
        return view
