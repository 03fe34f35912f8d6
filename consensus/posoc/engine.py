"""Proof of state of charge (thesis ch. 4) as the chain's consensus: EVs' scores from their
chargers' hourly reports choose who produces each window.

Scores. Every hour each EV's charger reports the energy charged and discharged, the SOC at the
end of the hour and whether the EV departed (the `EVChargers` contract; the genesis hands this
engine its reader). An EV's hourly proof score is eq. 4.1 in integers (`rules.posoc.hour_score_int`):
δ·(𝒟 − 𝒞) with δ the hour's price factor from the genesis tariff (eqs. 4.2–4.4), plus the
battery room left at departure; its window score is the sum over the window's hours (4.17).
Every validator computes them from the reports on chain, so there is nothing for a producer to
propose or inflate: a block producer gets them wrong only by producing out of turn, which the
skeleton rejects.

The mLAG. At the first block of a new window the engine draws the next window's miner-aggregator
(eq. 4.18) by weighted random sampling over the ended window's scores, each EV weighing
max(score, 0) + 1 Wh (`rules.posoc.choose_aggregator`'s floor: a charging EV keeps a chance, as
Algorithm 2 intends). EVs delegate to validators (genesis): the drawn EV's validator produces the
window's blocks, its fallbacks are the next draws with that validator excluded, and a silent one
is slashed — the skeleton shared with PoEG (`consensus.scored`). One window is drawn per block, so
a chain that was down catches up one window a block.

Tariff. The default is Table 4.1's mean prices (6.8, 10.0, 12.9 ¢/kWh): δ_mid = 0.47, δ_on = 0.90.
§4.4.1's prices give δ_on > 1, which breaks eq. 4.2 (0 ≤ δ ≤ 1); with such a tariff
`price_factor_ppm` clamps δ to 1, the reading the simulation keeps too.

Federated learning's ledger (Algorithm 4). Round r is window r. An EV posts the commitment to its
model update (COMMIT ‖ RLP[round, keccak of the weights, size in bytes]) during round r, once;
the mLAG drawn for window r + 1 posts the global model (AGGREGATE ‖ RLP[round r, hash, the EVs
included, ascending]) during window r + 1, once, naming only EVs that committed to round r: an EV
whose update is missing is excluded by not being named. What fails a rule changes nothing.

The bit-for-bit check (4.19). The weights travel off chain (node/p2p/models.py); the chain keeps
their hashes, so anyone who holds the included updates can prove a wrong aggregate:
CHALLENGE_AGGREGATE ‖ RLP[round, [update bytes, …]], the included updates in the aggregate's
order. Every node checks each blob against the EV's committed hash (a blob that differs proves
nothing: ClaimError), then recomputes FedAvg in fixed point (`consensus.rules.fedavg`); if an
included update is malformed or the average's hash is not the posted one, the aggregate is voided
and the mLAG's bonded validator slashed. So that every aggregate can be challenged in one
transaction, the committed sizes of the updates an aggregate includes sum to at most
MAX_CHALLENGE_BYTES (each update is at most that too). The exclusion rule an honest mLAG follows
(`fedavg.includable`): include exactly the committed updates it could fetch that hash to their
commitment, decode and share the layout of the first such by EV index, while the included sizes stay
within MAX_CHALLENGE_BYTES; naming a malformed one voids the aggregate. A challenge
has no deadline; a voided round stays aggregated (it is not posted again).

The V2V market and the mining fee with confiscation (eq. 4.20) are the V2VMarket contract's
(`market.contracts.v2v_market`), which reads this engine's window and tariff.
"""
from __future__ import annotations

from dataclasses import dataclass

import rlp

from consensus.engine import ChainReader, EngineServices
from consensus.rules.fedavg import ModelError, aggregate_hash
from consensus.rules.posoc import band, hour_score_int, price_factor_ppm
from consensus.scored import SLASHED, ClaimError, ScoredEngine, ValidatorSet, bonded, integer
from vm.blocks import Header
from vm.codec import decode as rlp_decode
from vm.codec import fields, string, uint
from vm.crypto import keccak256
from vm.limits import MAX_TRANSACTION_SIZE, rlp_list_size, rlp_string_size
from vm.native.storage import Mapping, Struct, Value
from vm.state import State
from vm.types import Address

POSOC_ADDRESS = Address(bytes.fromhex("6772696400000000000000000000000000000004"))  # "grid" ‖ 4
MAX_EVS = 1024
MAX_WINDOW_HOURS = 7 * 24
"""A window's draw reads every EV's report for every hour of it: at most 1,024 × 168 reads."""
NEXT_WINDOW = Value(b"posoc.nextWindow", "uint64")
"""The first window whose mLAG draw is not made; 0 until the first block starts the count."""
WINDOW_SCORE = Mapping(b"posoc.windowScore", "int256")
"""EV → its score over the last drawn window (Wh; charging can make it negative)."""
MLAG = Mapping(b"posoc.mlag", "address")
"""Window → the EV drawn as its miner-aggregator."""
DRAWN_WINDOW = Value(b"posoc.drawnWindow", "uint64")
COMMIT, AGGREGATE, CHALLENGE_AGGREGATE = b"\x10", b"\x11", b"\x12"
MAX_CHALLENGE_BYTES = 120_000
"""The committed sizes of the updates one aggregate includes sum to at most this, so the challenge
that carries them all fits one transaction (MAX_TRANSACTION_SIZE, 128 KiB). The actor-critic's
update is 7,806 bytes: 15 of them per aggregate."""
MAX_MODEL_BYTES = MAX_CHALLENGE_BYTES
"""The largest model update a commitment may announce (the weights travel off chain)."""
_TX_ENVELOPE = 512
"""Room for a signed transaction's fields around its data (type, nonce, fees, gas, to, value, signature)."""
assert 1 + rlp_list_size(rlp_string_size(8) + rlp_list_size(MAX_CHALLENGE_BYTES + 1024 * 4)) + _TX_ENVELOPE \
    <= MAX_TRANSACTION_SIZE, "a challenge of a maximal aggregate must fit one transaction"
UPDATE = Struct(hash="bytes32", size="uint64")
UPDATES = Mapping(b"posoc.update", UPDATE)
"""(round, EV) → its committed update."""
UPDATE_COUNT = Mapping(b"posoc.updateCount", "uint64")
GLOBAL = Struct(hash="bytes32", included="uint64[]", by="address", number="uint64", voided="bool")
GLOBALS = Mapping(b"posoc.global", GLOBAL)
"""Round → the aggregate the mLAG posted: its hash, the EVs (indices, ascending) it averaged, who
posted it in which block, and whether a challenge proved it wrong."""
LAST_AGGREGATED = Value(b"posoc.lastAggregated", "uint64")
AGGREGATE_COUNT = Value(b"posoc.aggregateCount", "uint64")
AGGREGATED = Mapping(b"posoc.aggregated", "uint64")
"""k → the round of the k-th aggregate posted (for the model view's latest few)."""
MODEL_VIEW_AGGREGATES = 8
WINDOW_HOURS = Value(b"posoc.windowHours", "uint64")
TARIFF = Mapping(b"posoc.tariff", "uint256")
"""Band (0 off, 1 mid, 2 on) → its price per kWh. The window and the tariff are written at genesis so
the V2V market reads the very numbers the scores use (`market.contracts.v2v_market`)."""
BANDS = ("off", "mid", "on")


def commitment(round_: int, model_hash: bytes, size: int) -> bytes:
    """The data of an EV's commitment to its model update for `round_`."""
    return COMMIT + rlp.encode([round_, model_hash, size])


def aggregate(round_: int, model_hash: bytes, included: list[int]) -> bytes:
    """The data of the mLAG's global model for `round_`, naming the EVs (genesis indices) it averaged."""
    return AGGREGATE + rlp.encode([round_, model_hash, included])


def challenge(round_: int, blobs: list[bytes]) -> bytes:
    """The data of a challenge to `round_`'s aggregate: the included updates, in the aggregate's order."""
    return CHALLENGE_AGGREGATE + rlp.encode([round_, list(blobs)])


@dataclass(frozen=True)
class EVBond:
    address: Address
    validator: Address


@dataclass(frozen=True)
class PoSOCConfig:
    set: ValidatorSet
    evs: tuple[EVBond, ...]
    window_hours: int = 24
    tariff: tuple[int, int, int] = (68, 100, 129)
    """Off-, mid- and on-peak prices per kWh: Table 4.1's means in tenths of a cent (6.8, 10.0, 12.9 ¢)."""

    @classmethod
    def from_params(cls, params: dict, block_time: int) -> "PoSOCConfig":
        validator_set = ValidatorSet.from_params(params, block_time, "posoc", {"evs", "windowHours", "tariff"})
        evs = [EVBond(address, validator) for address, validator, _ in
               bonded(params, "evs", validator_set.validators, MAX_EVS)]
        tariff = params.get("tariff", {"off": 68, "mid": 100, "on": 129})
        if not isinstance(tariff, dict) or set(tariff) != {"off", "mid", "on"}:
            raise ValueError("consensus.tariff takes off, mid and on (prices per kWh, integers)")
        prices = tuple(integer(tariff[b], f"consensus.tariff.{b}", minimum=1) for b in ("off", "mid", "on"))
        hours = integer(params.get("windowHours", 24), "consensus.windowHours", minimum=1)
        if hours > MAX_WINDOW_HOURS:
            raise ValueError(f"consensus.windowHours is at most {MAX_WINDOW_HOURS} (a week)")
        return cls(validator_set, tuple(evs), hours, prices)


class ProofOfStateOfCharge(ScoredEngine):
    name = "posoc"
    address = POSOC_ADDRESS

    def __init__(self, config: PoSOCConfig, services: EngineServices = EngineServices()) -> None:
        if services.ev_report is None or services.hour_seconds is None:
            raise ValueError("posoc reads the EV chargers: the genesis must place an EVChargers contract")
        super().__init__(config.set)
        self.config = config
        self.services = services
        self.window_seconds = services.hour_seconds * config.window_hours

    def genesis_state(self, state: State) -> None:
        super().genesis_state(state)
        WINDOW_HOURS.write(state, self.address, self.config.window_hours)
        for index, price in enumerate(self.config.tariff):
            TARIFF.write(state, self.address, index, price)

    def delta_ppm(self, hour: int) -> int:
        """δ of the hour's band (eqs. 4.2–4.4), from the genesis tariff; hours count from the epoch (UTC)."""
        off, mid, on = self.config.tariff
        return {"off": 0, "mid": price_factor_ppm(mid, off), "on": price_factor_ppm(on, off)}[band(hour % 24)]

    def window_scores(self, state: State, window: int) -> list[int]:
        """Each EV's score over `window` (eq. 4.17): Σ of its hourly scores (4.1); an hour without a
        report scores 0."""
        first = window * self.config.window_hours
        scores = []
        for ev in self.config.evs:
            total = 0
            for hour in range(first, first + self.config.window_hours):
                report = self.services.ev_report(state, ev.address, hour)
                if report is not None:
                    charged, discharged, soc, departing, capacity, soc_max = report
                    total += hour_score_int(self.delta_ppm(hour), discharged, charged, soc, departing, soc_max, capacity)
            scores.append(total)
        return scores

    def settle(self, chain: ChainReader, header: Header, state: State, own) -> None:
        """At the first block of a new window, draw the next window's mLAG and producer order."""
        now = header.timestamp // self.window_seconds
        due = NEXT_WINDOW.read(state, self.address) or now
        if due >= now:
            NEXT_WINDOW.write(state, self.address, due)
            return
        scores = self.window_scores(state, due)
        for ev, score in zip(self.config.evs, scores):
            WINDOW_SCORE.write(state, self.address, ev.address, score)
        if self.config.evs:
            candidates = [(ev.validator, max(score, 0) + 1) for ev, score in zip(self.config.evs, scores)]
            seed = self.seed(chain, chain.header_by_hash(header.parent_hash), due)
            eligible = self.eligible(state, self.skipped(header))
            drawn = self.draws(eligible, candidates, seed)
            if drawn:
                MLAG.write(state, self.address, due + 1, self.config.evs[drawn[0]].address.to_checksum())
            self.write_order(state, self.draw_order(eligible, candidates, seed))
        DRAWN_WINDOW.write(state, self.address, due + 1)
        NEXT_WINDOW.write(state, self.address, due + 1)

    def receive(self, state: State, header: Header, tx) -> tuple[Address, str] | None:
        """A model commitment, an aggregate, or a challenge to one (federated learning's ledger)."""
        kind = tx.data[:1]
        if kind == CHALLENGE_AGGREGATE:
            return self._challenge(state, tx)
        window = header.timestamp // self.window_seconds
        evs = [ev.address for ev in self.config.evs]
        round_item, hash_item, third = fields(rlp_decode(tx.data[1:], max_depth=2), 3, "message")
        round_, model_hash = uint(round_item, "round", 8), string(hash_item, "hash", length=32)
        if kind == COMMIT:
            if tx.sender not in evs:
                raise ClaimError("only an EV commits a model update")
            if round_ != window:
                raise ClaimError(f"a commitment is for the current round {window}, not {round_}")
            if UPDATES.read(state, self.address, round_, tx.sender) is not None:
                raise ClaimError(f"{tx.sender.to_checksum()} already committed to round {round_}")
            size = uint(third, "size", 8)
            if not 0 < size <= MAX_MODEL_BYTES:
                raise ClaimError(f"an update is 1..{MAX_MODEL_BYTES} bytes")
            UPDATES.write(state, self.address, round_, tx.sender, {"hash": model_hash, "size": size})
            UPDATE_COUNT.write(state, self.address, round_, UPDATE_COUNT.read(state, self.address, round_) + 1)
            return None
        if kind == AGGREGATE:
            mlag = MLAG.read(state, self.address, window)
            if round_ + 1 != window or not mlag or Address.from_hex(mlag) != tx.sender:
                raise ClaimError(f"the aggregate of round {window - 1} is the window {window} mLAG's to post")
            if GLOBALS.read(state, self.address, round_) is not None:
                raise ClaimError(f"round {round_} is already aggregated")
            if not isinstance(third, list) or not 0 < len(third) <= len(evs):
                raise ClaimError("the aggregate names the EVs it includes")
            included = [uint(k, "included", 4) for k in third]
            if included != sorted(set(included)) or any(k >= len(evs) for k in included):
                raise ClaimError("the aggregate may include only EVs that committed to the round, ascending")
            updates = [UPDATES.read(state, self.address, round_, evs[k]) for k in included]
            if any(update is None for update in updates):
                raise ClaimError("the aggregate may include only EVs that committed to the round, ascending")
            total = sum(update["size"] for update in updates)
            if total > MAX_CHALLENGE_BYTES:
                raise ClaimError(f"the included updates are {total} bytes: an aggregate includes at most "
                                 f"{MAX_CHALLENGE_BYTES} bytes of them, so one transaction can challenge it")
            GLOBALS.write(state, self.address, round_, {"hash": model_hash, "included": included,
                                                         "by": tx.sender.to_checksum(), "number": header.number})
            LAST_AGGREGATED.write(state, self.address, round_)
            count = AGGREGATE_COUNT.read(state, self.address)
            AGGREGATED.write(state, self.address, count, round_)
            AGGREGATE_COUNT.write(state, self.address, count + 1)
            return None
        raise ClaimError(f"unknown message kind 0x{kind.hex()}")

    def _challenge(self, state: State, tx) -> tuple[Address, str]:
        """Recompute the aggregate from the updates the challenge carries: void it and slash its
        poster's validator if it does not match; ClaimError if it does, or if a blob is not the
        committed one (which proves nothing)."""
        round_item, blobs_item = fields(rlp_decode(tx.data[1:], max_depth=2), 2, "challenge")
        round_ = uint(round_item, "round", 8)
        posted = GLOBALS.read(state, self.address, round_)
        if posted is None:
            raise ClaimError(f"round {round_} has no aggregate")
        if posted["voided"]:
            raise ClaimError(f"the aggregate of round {round_} is already voided")
        if not isinstance(blobs_item, list) or len(blobs_item) != len(posted["included"]):
            raise ClaimError(f"a challenge carries the {len(posted['included'])} included updates, one per EV")
        blobs = [string(blob, "update") for blob in blobs_item]
        for index, blob in zip(posted["included"], blobs):
            ev = self.config.evs[index].address
            if keccak256(blob) != UPDATES.read(state, self.address, round_, ev)["hash"]:
                raise ClaimError(f"the update given for {ev.to_checksum()} is not the one it committed to")
        try:
            matches = aggregate_hash(blobs) == posted["hash"]
        except ModelError:
            matches = False  # naming a malformed update breaks the exclusion rule
        if matches:
            raise ClaimError("the aggregate matches its updates")
        GLOBALS.write(state, self.address, round_, {**posted, "voided": True})
        poster = Address.from_hex(posted["by"])
        validator = next(ev.validator for ev in self.config.evs if ev.address == poster)
        return validator, f"aggregate of round {round_} does not match its updates"

    def status(self, chain: ChainReader, state: State) -> dict:
        at = self.address
        head = chain.head
        drawn = DRAWN_WINDOW.read(state, at)
        mlag = MLAG.read(state, at, drawn) if drawn else None
        return {
            "engine": self.name, "blockNumber": head.number, "hourSeconds": self.services.hour_seconds,
            "windowHours": self.config.window_hours, "currentWindow": head.timestamp // self.window_seconds,
            "currentHour": head.timestamp // self.services.hour_seconds,
            "drawnWindow": drawn or None,
            "mlag": Address.from_hex(mlag).to_checksum() if mlag and int(mlag, 16) else None,
            **self.validator_views(state),
            "validators": [{"address": v.to_checksum(), "stake": self.stake(state, v),
                            "slashed": SLASHED.read(state, at, v)} for v in self.set.validators],
            "tariff": dict(zip(("off", "mid", "on"), self.config.tariff)),
            "evs": [{"address": ev.address.to_checksum(), "validator": ev.validator.to_checksum(),
                     "windowScore": WINDOW_SCORE.read(state, at, ev.address)} for ev in self.config.evs],
            "model": self._model_view(state, head.timestamp // self.window_seconds),
        }

    def aggregate_record(self, state: State, round_: int) -> dict | None:
        """Round `round_`'s aggregate as the views show it, or None."""
        posted = GLOBALS.read(state, self.address, round_)
        if posted is None:
            return None
        return {"round": round_, "hash": "0x" + posted["hash"].hex(),
                "included": [self.config.evs[k].address.to_checksum() for k in posted["included"]],
                "by": Address.from_hex(posted["by"]).to_checksum(), "blockNumber": posted["number"],
                "voided": posted["voided"]}

    def update_record(self, state: State, round_: int, ev: Address) -> dict | None:
        """`ev`'s committed update for `round_`: {"hash": bytes, "size": int}, or None."""
        return UPDATES.read(state, self.address, round_, ev)

    def _model_view(self, state: State, window: int) -> dict:
        """The round in progress, its commitments, and the latest aggregates (newest last)."""
        at = self.address
        count = AGGREGATE_COUNT.read(state, at)
        rounds = [AGGREGATED.read(state, at, k) for k in range(max(count - MODEL_VIEW_AGGREGATES, 0), count)]
        return {"round": window, "commitments": UPDATE_COUNT.read(state, at, window),
                "aggregates": [self.aggregate_record(state, r) for r in rounds]}
