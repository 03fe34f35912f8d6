"""Proof of energy generation (thesis ch. 3) as the chain's consensus.

Who produces. A few validators carry the chain; every prosumer is bonded to one (genesis).
Settlement slots are the meters' slots (`slot = timestamp // slotSeconds`). Once a slot has
ended, the next block must settle it: its producer posts the partition, the certified plans,
the scores and the reward shares as the block's last transaction, to `POEG_ADDRESS`
(`messages.SETTLE`), and every validator checks it in integers (`settlement.verify`). A block
that is due to settle and does not, or settles wrongly, is invalid. The settlement's coalition
scores are the weights of the producer draw (eq. 3.16, `consensus.scored`): a coalition stands
for the validator its members bond the most score to. The skeleton (the order, fallbacks,
seeds, slashing, equivocation evidence) is `consensus.scored.ScoredEngine`, which PoSOC (issue 12)
is to share.

Silent producers (3.24) are slashed by the skeleton; here, if one of them was the validator the
last miner coalition drew, that coalition's reward is withheld. Stability is optimistic: anyone
may post a union plan for two coalitions of the last settlement in which no member's score falls
and the total rises (`messages.CHALLENGE`); if it checks out the settling producer is slashed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from consensus.engine import ChainReader, EngineServices, Signer
from consensus.poeg import ledger, messages, settlement
from consensus.poeg.ledger import POEG_ADDRESS
from consensus.rules.community import Community
from consensus.rules.line_loss import LossModel
from consensus.scored import SLASHED, ScoredEngine, ValidatorSet, bonded, integer
from vm.blocks import Header, InvalidBlock
from vm.environment import BlockEnvironment
from vm.gas import intrinsic_gas
from vm.state import State
from vm.transactions import decode_transaction, sign_legacy
from vm.types import Address


@dataclass(frozen=True)
class Prosumer:
    address: Address
    x_m: int
    y_m: int
    validator: Address


@dataclass(frozen=True)
class PoEGConfig:
    set: ValidatorSet
    prosumers: tuple[Prosumer, ...]
    delta_ppm: int = 100_000
    loss: LossModel = LossModel()

    @classmethod
    def from_params(cls, params: dict, block_time: int) -> "PoEGConfig":
        validator_set = ValidatorSet.from_params(params, block_time, "poeg", {"prosumers", "deltaPpm", "lossModel"})
        prosumers = [Prosumer(address, integer(entry.get("x", 0), f"consensus.prosumers[{k}].x", signed=True),
                              integer(entry.get("y", 0), f"consensus.prosumers[{k}].y", signed=True), validator)
                     for k, (address, validator, entry) in enumerate(
                         bonded(params, "prosumers", validator_set.validators, settlement.MAX_PROSUMERS))]
        loss = params.get("lossModel", {})
        if not isinstance(loss, dict) or set(loss) - {"basePpm", "perKmPpm", "capPpm"}:
            raise ValueError("consensus.lossModel takes basePpm, perKmPpm, capPpm (integers, ppm)")
        model = LossModel(loss.get("basePpm", 0), loss.get("perKmPpm", 2_700), loss.get("capPpm", 56_000))
        delta = integer(params.get("deltaPpm", 100_000), "consensus.deltaPpm")
        if not 0 < delta <= 1_000_000:
            raise ValueError("consensus.deltaPpm (δ of eq. 3.23) must lie in 1..1000000")
        return cls(validator_set, tuple(prosumers), delta, model)


class ProofOfEnergyGeneration(ScoredEngine):
    name = "poeg"
    address = POEG_ADDRESS

    def __init__(self, config: PoEGConfig, services: EngineServices = EngineServices()) -> None:
        if services.reading is None or services.slot_seconds is None:
            raise ValueError("poeg reads the meters: the genesis must place a Meters contract")
        super().__init__(config.set)
        self.config = config
        self.services = services
        self.slot_seconds = services.slot_seconds

    # -- the block's engine work ------------------------------------------------------------------
    def own_transaction(self, header: Header, transactions: tuple):
        """The block's settlement: its last transaction, if the producer sent it to POEG_ADDRESS as one."""
        if not transactions:
            return None
        last = transactions[-1]
        if last.to == POEG_ADDRESS and last.sender == header.producer and last.data[:1] == messages.SETTLE:
            return last
        return None

    def is_system_transaction(self, tx) -> bool:
        return tx.to == POEG_ADDRESS and tx.data[:1] == messages.SETTLE

    def settle(self, chain: ChainReader, header: Header, state: State, settling) -> None:
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
        eligible = self.eligible(state, self.skipped(header))
        try:
            posted = settlement.decode(settling.data[1:])
            outcome = settlement.verify(posted, due, community, self.config.loss, self.config.delta_ppm, seed,
                                        self._can_mine(eligible))
        except settlement.SettlementError as error:
            raise InvalidBlock(f"poeg: slot {due} settlement rejected: {error}") from None
        self._record(state, header, due, community, posted, outcome, seed, eligible)

    def _can_mine(self, eligible: set[Address]):
        """Whether a coalition may be drawn to mine: its validator is eligible (3.24: a miner that
        is slashed or silent is not reselected), so the reward and the producer draw agree."""
        return lambda members, scores: self.coalition_validator(members, scores) in eligible

    def receive(self, state: State, header: Header, tx) -> tuple[Address, str] | None:
        return messages.apply_claim(self, state, tx.data)

    def on_silent(self, state: State, validator: Address) -> None:
        self._withhold(state, validator)

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

    def community(self, state: State, slot: int) -> Community:
        """The slot's readings (a prosumer without one has a zero balance) at the genesis positions."""
        readings = [self.services.reading(state, p.address, slot) or (0, 0) for p in self.config.prosumers]
        return Community(tuple(r[0] for r in readings), tuple(r[1] for r in readings),
                         tuple(p.x_m for p in self.config.prosumers), tuple(p.y_m for p in self.config.prosumers))

    def _record(self, state: State, header: Header, slot: int, community: Community,
                posted: settlement.Settlement, outcome: settlement.Outcome, seed: bytes,
                eligible: set[Address]) -> None:
        at = POEG_ADDRESS
        epos: dict[Address, int] = dict.fromkeys(self.set.validators, 0)
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
        candidates = [(self.coalition_validator(c, outcome.scores), score)
                      for c, score in zip(coalitions, outcome.coalition_scores)]
        self.write_order(state, self.draw_order(eligible, candidates, seed))
        ledger.NEXT_SLOT.write(state, at, slot + 1)
        ledger.LAST.write(state, at, ledger.SlotRecord(
            slot, header.number, header.producer, community.production_wh, community.consumption_wh, coalitions,
            outcome.scores, outcome.miner, tuple(sorted(outcome.shares.items()))).encode())

    def coalition_validator(self, members: tuple[int, ...], scores: tuple[int, ...]) -> Address:
        """The validator a coalition's members bond the most score to (ties: the earlier in genesis)."""
        bonded = dict.fromkeys(self.set.validators, 0)
        for i in members:
            bonded[self.config.prosumers[i].validator] += scores[i]
        return max(self.set.validators, key=lambda v: (bonded[v], -self.set.validators.index(v)))

    # -- the producer's side ---------------------------------------------------------------------
    def system_transactions(self, chain: ChainReader, parent: Header, state: State, env: BlockEnvironment,
                            signer: Signer) -> list[bytes]:
        """The settlement, when the block `env` describes must carry one."""
        due = ledger.NEXT_SLOT.read(state, POEG_ADDRESS) or env.timestamp // self.slot_seconds
        if due >= env.timestamp // self.slot_seconds:
            return []
        community = self.community(state, due)
        partition = self.services.partition or settlement.singletons
        order = self.schedule(state)
        eligible = self.eligible(state, order[:order.index(signer.address)])  # as finalize will see it
        proposal = settlement.propose(due, community, self.config.loss, self.config.delta_ppm,
                                      self.seed(chain, parent, due), partition(community, self.config.loss),
                                      self._can_mine(eligible))
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
        view = {
            "engine": self.name, "blockNumber": head.number, "slotSeconds": self.slot_seconds,
            "currentSlot": head.timestamp // self.slot_seconds,
            "nextSlotToSettle": ledger.NEXT_SLOT.read(state, at),
            **self.validator_views(state),
            "validators": [{"address": v.to_checksum(), "stake": self.stake(state, v),
                            "slashed": SLASHED.read(state, at, v), "eposStake": ledger.EPOS.read(state, at, v)}
                           for v in self.set.validators],
            "withheldWh": ledger.WITHHELD_TOTAL.read(state, at),
            "deltaPpm": self.config.delta_ppm,
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
