"""Proof of energy generation: proof scores, savings, rewards and penalties (thesis §3.2.4–3.3).

Every formula here is written once over the `Losses` interface, so the same code
runs in floats (kWh, `line_loss.FloatLosses`, what the proposer's optimiser works in) and
in integers (Wh, floored products, `rules.line_loss.IntLosses`, what a validator
recomputes); it imports no float library itself. A trade's line loss E_ij^lo is
split between its seller and its buyer (`Losses.halves`): eq. 3.7 lists it in
both parties' losses, and counting it twice would make the coalition's loss
(3.21) exceed the physical loss; halving keeps Σ_i E_Si^loss equal to the loss
the LP (3.11) minimises.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Generic

from consensus.sampling import derive_seed, weighted_choice
from consensus.rules.community import Community
from consensus.rules.line_loss import E, Losses


@dataclass(frozen=True)
class Plan(Generic[E]):
    """A coalition's settlement (eqs. 3.11–3.14): what each seller sends each buyer inside
    the coalition; every member's remaining balance is traded with the EDC."""

    members: tuple[int, ...]
    """Prosumer indices, ascending."""
    trades: tuple[tuple[int, int, E], ...]
    """(seller, buyer, energy) with energy > 0, ascending by (seller, buyer)."""


class InvalidPlan(ValueError):
    """A proposed settlement breaks a rule a validator checks."""


def balance(losses: Losses[E], i: int) -> E:
    """E_i^bal in the arithmetic's unit."""
    return losses.energy(losses.community.balance_wh[i])


def singleton_score(losses: Losses[E], i: int) -> E:
    """𝒫𝒮_i (eq. 3.4, Algorithm 1): surplus net of the loss of selling it to the EDC, else 0."""
    surplus = balance(losses, i)
    if surplus > 0:
        return surplus - losses.to_edc(i, surplus)
    return losses.energy(0)


def alone_loss(losses: Losses[E], i: int) -> E:
    """E_i^loss (eq. 3.8): the loss of trading the whole balance with the EDC."""
    return losses.to_edc(i, abs(balance(losses, i)))


def edc_residuals(plan: Plan[E], losses: Losses[E]) -> dict[int, E]:
    """E_id or E_di (eqs. 3.12–3.13): what each member still trades with the EDC."""
    residual = {i: abs(balance(losses, i)) for i in plan.members}
    for seller, buyer, energy in plan.trades:
        residual[seller] -= energy
        residual[buyer] -= energy
    return residual


def member_losses(plan: Plan[E], losses: Losses[E]) -> dict[int, E]:
    """E_Si^loss (eq. 3.7): the EDC leg of the residual plus the member's half of each trade's loss."""
    loss = {i: losses.to_edc(i, energy) for i, energy in edc_residuals(plan, losses).items()}
    for seller, buyer, energy in plan.trades:
        seller_part, buyer_part = losses.halves(losses.between(seller, buyer, energy))
        loss[seller] += seller_part
        loss[buyer] += buyer_part
    return loss


def member_savings(plan: Plan[E], losses: Losses[E]) -> dict[int, E]:
    """E_Si^save: loss avoided by trading inside the coalition rather than alone (3.8 minus 3.7)."""
    return {i: alone_loss(losses, i) - loss for i, loss in member_losses(plan, losses).items()}


def member_scores(plan: Plan[E], losses: Losses[E]) -> dict[int, E]:
    """𝒫𝒮_Si (eq. 3.6): singleton score plus loss saved; both cases of (3.6) are this sum,
    because 𝒫𝒮_i is 0 in the second."""
    return {i: singleton_score(losses, i) + saving for i, saving in member_savings(plan, losses).items()}


def coalition_score(plan: Plan[E], losses: Losses[E]) -> E:
    """𝒫𝒮_S (eq. 3.5)."""
    return sum(member_scores(plan, losses).values(), losses.energy(0))


def coalition_saving(plan: Plan[E], losses: Losses[E]) -> E:
    """E_S^save = E_D^loss − E_S^loss (eqs. 3.19–3.21)."""
    return sum(member_savings(plan, losses).values(), losses.energy(0))


def mining_reward(total_saving: E, delta_ppm: int, losses: Losses[E]) -> E:
    """ℳ_r = δ · Σ E_Si^save over the whole stable partition (eq. 3.23), 0 < δ ≤ 1 in ppm."""
    if not 0 < delta_ppm <= 1_000_000:
        raise ValueError("δ must lie in (0, 1]")
    return losses.scale(total_saving, delta_ppm)


def payoff(saving: E, reward: E, price_per_kwh: int, losses: Losses[E]) -> E:
    """x_i = (ℳ_r)_i + p_t · E_Si^save (eq. 3.22); with coalition totals it is u(S) (eq. 3.17).

    ℳ_r is an energy credit (eq. 3.23), so it is valued at p_t like the saving for the
    two terms to add in one unit."""
    return losses.value(saving + reward, price_per_kwh)


def select_miner(scores: Sequence[int], seed: bytes, excluded: Collection[int] = ()) -> int:
    """Weighted random sampling over coalition proof scores (eq. 3.16, Algorithm 2).

    With `excluded` it is the reselection of eq. 3.24: a coalition whose member refused or
    cheated is removed from w𝒫* and the draw is repeated with a fresh seed for that round."""
    weights = [0 if k in excluded else score for k, score in enumerate(scores)]
    return weighted_choice(weights, derive_seed(seed, len(excluded)))


def slash(stakes: Sequence[int], offenders: Collection[int]) -> tuple[tuple[int, ...], int]:
    """Penalty of §3.3.3: the offending coalition's locked stakes are forfeited (its reward is
    withheld by reselecting, see `select_miner`). Returns the new stakes and the amount slashed."""
    slashed = sum(stakes[i] for i in offenders)
    return tuple(0 if i in offenders else stake for i, stake in enumerate(stakes)), slashed


def to_wh(plan: Plan[float]) -> Plan[int]:
    """The proposer's float plan in whole Wh (floored, so every seller and buyer stays within
    its balance); trades that round to zero are dropped."""
    trades = tuple((s, b, int(energy * 1000)) for s, b, energy in plan.trades)
    return Plan(plan.members, tuple(t for t in trades if t[2] > 0))


def check_plan(plan: Plan[int], community: Community) -> None:
    """Validator rules for a proposed integer plan: members ascending and distinct, trades from
    a member seller to a member buyer in positive whole Wh, in canonical order, and nobody
    trades more than its balance (3.12–3.15). Raises `InvalidPlan` with the reason."""
    members = plan.members
    if list(members) != sorted(set(members)) or not all(0 <= i < community.size for i in members):
        raise InvalidPlan("members must be distinct prosumer indices in ascending order")
    bal = community.balance_wh
    member_set = set(members)
    sent = dict.fromkeys(members, 0)
    previous: tuple[int, int] | None = None
    for seller, buyer, energy in plan.trades:
        if type(energy) is not int or energy <= 0:
            raise InvalidPlan(f"trade {seller}->{buyer} must move a positive whole number of Wh")
        if seller not in member_set or buyer not in member_set:
            raise InvalidPlan(f"trade {seller}->{buyer} leaves the coalition")
        if bal[seller] <= 0 or bal[buyer] >= 0:
            raise InvalidPlan(f"trade {seller}->{buyer} is not from a seller to a buyer")
        if previous is not None and (seller, buyer) <= previous:
            raise InvalidPlan("trades must be in ascending (seller, buyer) order without repeats")
        previous = (seller, buyer)
        sent[seller] += energy
        sent[buyer] += energy
    for i, amount in sent.items():
        if amount > abs(bal[i]):
            raise InvalidPlan(f"prosumer {i} trades {amount} Wh but its balance is {bal[i]} Wh")
