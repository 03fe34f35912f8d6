"""One PoEG settlement slot on chain (thesis Algorithm 3, eqs. 3.4–3.23): what the slot's producer
posts, and the exact integer rules every validator checks it with.

The producer posts the partition into coalitions and, per coalition, the LP optimality
certificate of its transfer plan (`certificate`) with every member's loss, saving and proof
score; then the reward shares of the coalition the WRS draw picks (eq. 3.16). A validator
never re-runs the LP or merge-and-split: it checks each certificate against the meters'
readings (primal and dual feasibility, zero duality gap), recomputes the scores (3.4–3.8) from
the certified plans with the integer loss model, draws the miner coalition from the chain
seed, and recomputes the reward and its shares.

The reward is funded by the payers, so nothing is minted: each prosumer pays
⌊δ·E_Si^save⌋ Wh (§3.3.2, Lemma 2) and ℳ_r is the sum of those payments (eq. 3.23 with the
product floored per payer, so Σ paid = ℳ_r exactly). The miner coalition shares it by the exact
Shapley value (eq. 3.3, `shapley_exact_int`) of the game v(T) = Σ_{i∈T} 𝒫𝒮_i + ⌊G(T)⌋, where
G(T) is the certified optimum of sub-coalition T's LP (eqs. 3.5, 3.9), when the coalition has
at most `EXACT_SHAPLEY_MEMBERS` members: the producer posts a certificate for each of its
2^n − 2 proper sub-coalitions. Beyond that, shares are in proportion to the members' proof
scores 𝒫𝒮_Si, an O(n) rule (a member's score is what it brings to the coalition's weight in the
draw). Eight, not the ten of `EXACT_MAX_PLAYERS`: 254 sub-coalition certificates fit one
transaction with room to spare, 1,022 do not.

Individual rationality (Definitions 2–4): no member may save less than acting alone
(E_Si^save ≥ 0); the proposer splits a coalition that fails it into singletons, which always pass.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import rlp

from consensus.poeg import certificate as lp
from consensus.poeg.certificate import Certificate, CertificateError
from consensus.rules.coalition_lp import Instance, coalition_instance
from consensus.rules.community import Community
from consensus.rules.line_loss import PPM, IntLosses, LossModel
from consensus.rules.poeg import (Plan, InvalidPlan, check_plan, member_losses, member_savings, select_miner,
                                  singleton_score)
from consensus.rules.shapley import shapley_exact_int, split_reward
from vm.codec import MalformedRLP, fields, uint
from vm.codec import decode as rlp_decode

EXACT_SHAPLEY_MEMBERS = 8
"""Largest miner coalition shared by the exact Shapley value (see the module docstring)."""
MAX_SETTLEMENT_BYTES = 120_000
"""A settlement travels in one transaction (≤ 128 KiB); this leaves room for its envelope."""
MAX_PROSUMERS = lp.MAX_MEMBERS
MAX_NUMBER_BYTES = 8


class SettlementError(ValueError):
    """A posted settlement that breaks a rule; `check` names which (for logs and tests)."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check


@dataclass(frozen=True)
class CoalitionEntry:
    members: tuple[int, ...]
    """Prosumer indices, ascending."""
    certificate: Certificate
    """The optimal plan of `coalition_instance(members)` with its dual prices."""
    losses: tuple[int, ...]
    """E_Si^loss of each member (eq. 3.7), Wh."""
    savings: tuple[int, ...]
    """E_Si^save (eq. 3.8 minus 3.7), Wh."""
    scores: tuple[int, ...]
    """𝒫𝒮_Si (eq. 3.6), Wh."""


@dataclass(frozen=True)
class Settlement:
    slot: int
    coalitions: tuple[CoalitionEntry, ...]
    """The partition, ordered by each coalition's first member."""
    worths: tuple[Certificate, ...]
    """Certificates of the miner coalition's sub-coalitions, by bitmask 1 … 2^n − 2 (bit k = its
    k-th member); empty when it has more than EXACT_SHAPLEY_MEMBERS members."""
    shares: tuple[int, ...]
    """(ℳ_r)_i of each member of the miner coalition, in its member order."""


@dataclass(frozen=True)
class Outcome:
    """What a verified settlement means, for the ledger and the producer draw."""

    coalition_scores: tuple[int, ...]
    """𝒫𝒮_S of each coalition: the WRS weights (eq. 3.16)."""
    scores: tuple[int, ...]
    """𝒫𝒮_Si of every prosumer."""
    payments: tuple[int, ...]
    """⌊δ·E_Si^save⌋ Wh each prosumer pays into the reward."""
    miner: int | None
    """Index of the drawn coalition; None when every coalition scores 0."""
    shares: dict[int, int]
    """Prosumer → (ℳ_r)_i."""

    @property
    def reward(self) -> int:
        return sum(self.payments)


# -- canonical bytes ---------------------------------------------------------------------------
def encode(settlement: Settlement) -> bytes:
    return rlp.encode([
        settlement.slot,
        [[list(c.members), lp.encode(c.certificate), list(c.losses), list(c.savings), list(c.scores)]
         for c in settlement.coalitions],
        [lp.encode(w) for w in settlement.worths],
        list(settlement.shares)])


def decode(data: bytes) -> Settlement:
    if len(data) > MAX_SETTLEMENT_BYTES:
        raise SettlementError("encoding", f"{len(data)} bytes exceed MAX_SETTLEMENT_BYTES = {MAX_SETTLEMENT_BYTES}")
    try:
        slot, coalitions, worths, shares = fields(rlp_decode(data, max_depth=4), 4, "settlement")
        if not isinstance(coalitions, list) or not isinstance(worths, list) or not isinstance(shares, list):
            raise MalformedRLP("coalitions, worths and shares must be lists")
        if len(coalitions) > MAX_PROSUMERS or len(worths) > 2 ** EXACT_SHAPLEY_MEMBERS:
            raise MalformedRLP("too many coalitions or worth certificates")

        def numbers(item, name: str) -> tuple[int, ...]:
            if not isinstance(item, list) or len(item) > MAX_PROSUMERS:
                raise MalformedRLP(f"{name} must be a list of at most {MAX_PROSUMERS} numbers")
            return tuple(uint(x, name, MAX_NUMBER_BYTES) for x in item)

        entries = []
        for k, item in enumerate(coalitions):
            members, cert, losses, savings, scores = fields(item, 5, f"coalition {k}")
            if not isinstance(cert, bytes):
                raise MalformedRLP(f"coalition {k}: the certificate must be a byte string")
            entries.append(CoalitionEntry(numbers(members, "members"), lp.decode(cert), numbers(losses, "losses"),
                                          numbers(savings, "savings"), numbers(scores, "scores")))
        decoded_worths = []
        for w in worths:
            if not isinstance(w, bytes):
                raise MalformedRLP("a worth certificate must be a byte string")
            decoded_worths.append(lp.decode(w))
        return Settlement(uint(slot, "slot", MAX_NUMBER_BYTES), tuple(entries), tuple(decoded_worths),
                          numbers(shares, "shares"))
    except MalformedRLP as error:
        raise SettlementError("encoding", str(error)) from None
    except CertificateError as error:
        raise SettlementError("encoding", f"certificate: {error}") from None


# -- the validator's side ----------------------------------------------------------------------
def plan_of(instance: Instance, members: Sequence[int], certificate: Certificate) -> Plan[int]:
    """The certified plan in prosumer indices (the certificate names instance positions)."""
    return Plan(tuple(members), tuple((instance.sellers[i], instance.buyers[j], wh) for i, j, wh in certificate.plan))


def worth(losses: IntLosses, members: Sequence[int], certificate: Certificate) -> int:
    """v(T) = Σ 𝒫𝒮_i + ⌊G(T)⌋ Wh: unique for a certified optimum, whichever optimal plan is posted."""
    return sum(singleton_score(losses, i) for i in members) + certificate.objective // PPM


def _certified(community: Community, model: LossModel, members: Sequence[int], certificate: Certificate,
               where: str) -> Instance:
    instance = coalition_instance(community, members, model)
    try:
        lp.verify(certificate, instance.surplus, instance.deficit, instance.gains)
    except CertificateError as error:
        raise SettlementError("certificate", f"{where}: {error}") from None
    return instance


CanMine = Callable[[tuple[int, ...], Sequence[int]], bool]
"""Whether a coalition (its members, every prosumer's score) may be drawn to mine."""


def draw_miner(entries: Sequence[CoalitionEntry], coalition_scores: Sequence[int], scores: Sequence[int],
               seed: bytes, can_mine: CanMine | None) -> int | None:
    """The coalition drawn to mine (eq. 3.16) among those that may; None if none may with a
    positive score. With every coalition allowed it is `select_miner(coalition_scores, seed)`."""
    weights = [w if can_mine is None or can_mine(e.members, scores) else 0 for e, w in zip(entries, coalition_scores)]
    return select_miner(weights, seed) if any(weights) else None


def verify(settlement: Settlement, slot: int, community: Community, model: LossModel, delta_ppm: int,
           seed: bytes, can_mine: CanMine | None = None) -> Outcome:
    """Return what `settlement` pays if every rule holds; raise `SettlementError` otherwise.
    Integers only; O(Σ sellers·buyers) per coalition plus 2^n small checks for an exact Shapley.
    When no coalition may mine, nobody pays: the reward is waived."""
    if settlement.slot != slot:
        raise SettlementError("slot", f"settles slot {settlement.slot}, but slot {slot} is due")
    n = community.size
    seen: list[int] = []
    for k, entry in enumerate(settlement.coalitions):
        members = entry.members
        if not members or list(members) != sorted(set(members)) or members[-1] >= n:
            raise SettlementError("partition", f"coalition {k} must list distinct prosumers 0..{n - 1} ascending")
        if k and members[0] <= settlement.coalitions[k - 1].members[0]:
            raise SettlementError("partition", "coalitions must be ordered by their first member")
        seen.extend(members)
    if sorted(seen) != list(range(n)):
        raise SettlementError("partition", f"the coalitions cover {len(set(seen))} of {n} prosumers "
                                           f"({len(seen)} places): every prosumer is in exactly one")

    losses = IntLosses(community, model)
    scores, savings = [0] * n, [0] * n
    coalition_scores = []
    for k, entry in enumerate(settlement.coalitions):
        instance = _certified(community, model, entry.members, entry.certificate, f"coalition {k}")
        plan = plan_of(instance, entry.members, entry.certificate)
        try:
            check_plan(plan, community)
        except InvalidPlan as error:
            raise SettlementError("plan", f"coalition {k}: {error}") from None
        loss, saving = member_losses(plan, losses), member_savings(plan, losses)
        for name, posted, computed in (("losses", entry.losses, loss), ("savings", entry.savings, saving)):
            expected = tuple(computed[i] for i in entry.members)
            if posted != expected:
                raise SettlementError(name, f"coalition {k} posts {list(posted)}, the certified plan gives {list(expected)}")
        member_score = tuple(singleton_score(losses, i) + saving[i] for i in entry.members)
        if entry.scores != member_score:
            raise SettlementError("scores", f"coalition {k} posts proof scores {list(entry.scores)}, "
                                            f"the readings and plan give {list(member_score)}")
        for i, score in zip(entry.members, member_score):
            if saving[i] < 0:
                raise SettlementError("individual-rationality", f"prosumer {i} saves {saving[i]} Wh in coalition {k}: "
                                                                "less than acting alone")
            scores[i], savings[i] = score, saving[i]
        coalition_scores.append(sum(member_score))

    miner = draw_miner(settlement.coalitions, coalition_scores, scores, seed, can_mine)
    payments = tuple(losses.scale(s, delta_ppm) if miner is not None else 0 for s in savings)
    weights = _share_weights(settlement, miner, community, model, losses, scores)
    if miner is None:
        expected_shares: list[int] = []
    else:
        expected_shares = split_reward(sum(payments), weights)
    if sum(settlement.shares) != sum(payments):
        raise SettlementError("reward", f"shares total {sum(settlement.shares)} Wh but the payers fund "
                                        f"{sum(payments)} Wh: a reward may not mint")
    if list(settlement.shares) != expected_shares:
        raise SettlementError("shares", f"posted shares {list(settlement.shares)}, the rule gives {expected_shares}")
    members = settlement.coalitions[miner].members if miner is not None else ()
    return Outcome(tuple(coalition_scores), tuple(scores), payments, miner, dict(zip(members, expected_shares)))


def _share_weights(settlement: Settlement, miner: int | None, community: Community, model: LossModel,
                   losses: IntLosses, scores: Sequence[int]) -> list[int]:
    if miner is None:
        if settlement.worths:
            raise SettlementError("worths", "no coalition mines, so no worth certificates belong here")
        return []
    entry = settlement.coalitions[miner]
    members = entry.members
    if len(members) > EXACT_SHAPLEY_MEMBERS:
        if settlement.worths:
            raise SettlementError("worths", f"a coalition of {len(members)} shares by scores: no worths belong here")
        weights = [scores[i] for i in members]
    else:
        full = (1 << len(members)) - 1
        if len(settlement.worths) != max(full - 1, 0):
            raise SettlementError("worths", f"the miner coalition of {len(members)} needs {max(full - 1, 0)} "
                                            f"sub-coalition certificates, {len(settlement.worths)} posted")
        table = {0: 0, full: worth(losses, members, entry.certificate)}
        for mask in range(1, full):
            subset = [m for bit, m in enumerate(members) if mask >> bit & 1]
            _certified(community, model, subset, settlement.worths[mask - 1], f"sub-coalition {mask:#x}")
            table[mask] = worth(losses, subset, settlement.worths[mask - 1])
        weights = shapley_exact_int(len(members), table.__getitem__)
    return weights if sum(weights) > 0 else [1] * len(members)


# -- the producer's side -----------------------------------------------------------------------
Partitioner = Callable[[Community, LossModel], Sequence[Sequence[int]]]
"""The proposer's coalition search (merge-and-split, floats and an LP solver allowed)."""


def singletons(community: Community, model: LossModel) -> list[list[int]]:
    """The partition nobody can reject: everyone alone."""
    return [[i] for i in range(community.size)]


def propose(slot: int, community: Community, model: LossModel, delta_ppm: int, seed: bytes,
            partition: Sequence[Sequence[int]], can_mine: CanMine | None = None) -> Settlement:
    """A settlement of `partition` that `verify` accepts: each coalition's plan certified by HiGHS
    with exact repair, a coalition that fails individual rationality split into singletons, the
    miner drawn, its sub-coalitions certified and the reward shared. Checked before returning."""
    losses = IntLosses(community, model)
    entries: list[CoalitionEntry] = []
    for members in sorted(tuple(sorted(c)) for c in partition):
        entry = _entry(community, model, losses, members)
        if any(s < 0 for s in entry.savings):
            entries.extend(_entry(community, model, losses, (i,)) for i in members)
        else:
            entries.append(entry)
    entries.sort(key=lambda e: e.members[0])
    coalition_scores = [sum(e.scores) for e in entries]
    scores = [0] * community.size
    for e in entries:
        for i, s in zip(e.members, e.scores):
            scores[i] = s
    miner = draw_miner(entries, coalition_scores, scores, seed, can_mine)
    worths: list[Certificate] = []
    if miner is not None and len(entries[miner].members) <= EXACT_SHAPLEY_MEMBERS:
        members = entries[miner].members
        for mask in range(1, (1 << len(members)) - 1):
            subset = [m for bit, m in enumerate(members) if mask >> bit & 1]
            instance = coalition_instance(community, subset, model)
            worths.append(lp.propose(instance.surplus, instance.deficit, instance.gains))
    draft = Settlement(slot, tuple(entries), tuple(worths), ())
    if miner is None:
        shares: list[int] = []
    else:
        payments = sum(losses.scale(s, delta_ppm) for e in entries for s in e.savings)
        shares = split_reward(payments, _share_weights(draft, miner, community, model, losses, scores))
    settlement = Settlement(slot, tuple(entries), tuple(worths), tuple(shares))
    verify(settlement, slot, community, model, delta_ppm, seed, can_mine)
    return settlement


def _entry(community: Community, model: LossModel, losses: IntLosses, members: tuple[int, ...]) -> CoalitionEntry:
    instance = coalition_instance(community, members, model)
    cert = lp.propose(instance.surplus, instance.deficit, instance.gains)
    plan = plan_of(instance, members, cert)
    loss, saving = member_losses(plan, losses), member_savings(plan, losses)
    return CoalitionEntry(members, cert, tuple(loss[i] for i in members), tuple(saving[i] for i in members),
                          tuple(singleton_score(losses, i) + saving[i] for i in members))
