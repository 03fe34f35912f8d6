"""One coalition's loss LP (thesis eqs. 3.9–3.15) as integer data, for the settlement
certificate (`consensus.poeg.certificate`): each seller's surplus and each buyer's deficit in Wh
from the meters' balances, and the gain g_ij = f_id + f_dj − f_ij in ppm of the energy moved
from the members' integer distances, priced by the loss model (eq. 3.11's per-km reading by
default)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus.rules.community import Community
from consensus.rules.line_loss import LossModel


def pair_gains(seller_edc_m: Sequence[int], buyer_edc_m: Sequence[int],
               pair_m: Sequence[Sequence[int]], model: LossModel = LossModel()) -> list[list[int]]:
    """g_ij = f_id + f_dj − f_ij in ppm, from distances in metres: seller i's and buyer j's
    distance to the EDC and the pair's distance, each priced by `model.ppm` (floored integer
    loss rate). Negative where trading through the EDC loses less."""
    seller_loss = [model.ppm(d) for d in seller_edc_m]
    buyer_loss = [model.ppm(d) for d in buyer_edc_m]
    return [[seller_loss[i] + buyer_loss[j] - model.ppm(pair_m[i][j]) for j in range(len(buyer_loss))]
            for i in range(len(seller_loss))]


@dataclass(frozen=True)
class Instance:
    """One coalition's LP data in integers, from the meters' balances and the positions."""

    sellers: tuple[int, ...]
    """Prosumer index of seller i (balance > 0), ascending."""
    buyers: tuple[int, ...]
    """Prosumer index of buyer j (balance < 0), ascending."""
    surplus: tuple[int, ...]
    """s_i Wh."""
    deficit: tuple[int, ...]
    """b_j Wh."""
    gains: tuple[tuple[int, ...], ...]
    """g_ij ppm."""


def coalition_instance(community: Community, members: Sequence[int] | None = None,
                       model: LossModel = LossModel()) -> Instance:
    """The LP of coalition `members` (everyone by default): balances E_i^bal in Wh and integer
    distances (`Community.distance_m`) priced by `model`."""
    chosen = sorted(range(community.size) if members is None else set(members))
    balance = community.balance_wh
    sellers = tuple(i for i in chosen if balance[i] > 0)
    buyers = tuple(j for j in chosen if balance[j] < 0)
    gains = pair_gains([community.distance_m(i, None) for i in sellers],
                       [community.distance_m(j, None) for j in buyers],
                       [[community.distance_m(i, j) for j in buyers] for i in sellers], model)
    return Instance(sellers, buyers, tuple(balance[i] for i in sellers), tuple(-balance[j] for j in buyers),
                    tuple(tuple(row) for row in gains))
