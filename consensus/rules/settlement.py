"""The integer check of one PoEG settlement slot (Algorithm 3, lines 30–38): from the coalitions'
plans in whole Wh, draw the miner coalition, size the mining reward, share it by the exact
Shapley value (or by marginal totals over keccak-seeded player orders) and compute every
prosumer's payoff, in Wh and floored products, as a validator recomputes it bit for bit.

The proposer's float settlement and the LP that supplies the plans and the sub-coalition
worths are `market.economics.settlement`; both sides draw the miner with `draw_miner`, so they
always agree on who mines.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic

from consensus.sampling import derive_seed, shuffled
from consensus.rules.line_loss import E, IntLosses, Losses
from consensus.rules.poeg import Plan, coalition_score, member_savings, mining_reward, payoff, select_miner
from consensus.rules.shapley import EXACT_MAX_PLAYERS, marginal_totals, shapley_exact_int, split_reward

DELTA_PPM = 100_000
"""δ_t = 0.1, the thesis's starting value (§3.3.2)."""
PRICE_PER_KWH = 25
"""p_t in base units per kWh (e.g. cents): the thesis fixes no price; 25 is a typical
Australian retail tariff of the Ausgrid data's period."""


@dataclass(frozen=True)
class Settlement(Generic[E]):
    """What the slot pays, in one arithmetic."""

    coalition_scores: tuple[int, ...]
    """𝒫𝒮_S in Wh of every coalition of the partition (the miner-draw weights)."""
    miner: int
    """Index of the drawn coalition in the partition."""
    reward: E
    """ℳ_r (eq. 3.23)."""
    shares: dict[int, E]
    """(ℳ_r)_i of each miner-coalition member."""
    payoffs: tuple[E, ...]
    """x_i of every prosumer (eq. 3.22)."""
    shapley_error: float
    """Bound on each share's sampling error (0 when exact), in the reward's unit."""


def members_of(coalition: Sequence[int], mask: int) -> list[int]:
    """The members of `coalition` whose bit is set in `mask` (bit k is the k-th member)."""
    return [m for bit, m in enumerate(coalition) if mask >> bit & 1]


def draw_miner(plans: Sequence[Plan[int]], losses: IntLosses, seed: bytes) -> tuple[tuple[int, ...], int]:
    """The integer 𝒫𝒮_S of every coalition's Wh plan and the coalition drawn to mine (eq. 3.16)."""
    scores = tuple(coalition_score(plan, losses) for plan in plans)
    return scores, select_miner(scores, seed)


def payoffs(plans: Sequence[Plan[E]], losses: Losses[E], shares: dict[int, E], price_per_kwh: int) -> tuple[E, ...]:
    """x_i of every prosumer (eq. 3.22): its saving plus its share of the reward, valued at p_t."""
    savings = {i: s for plan in plans for i, s in member_savings(plan, losses).items()}
    zero = losses.energy(0)
    return tuple(payoff(savings[i], shares.get(i, zero), price_per_kwh, losses) for i in range(len(savings)))


def recompute(losses: IntLosses, plans: Sequence[Plan[int]], seed: bytes,
              worth: Callable[[list[int]], int], delta_ppm: int = DELTA_PPM,
              price_per_kwh: int = PRICE_PER_KWH, samples: int = 0) -> Settlement[int]:
    """The validator's integer settlement from the partition's Wh plans (one per coalition, the
    coalition being the plan's members). `worth(members)` is the integer 𝒫𝒮_T of a
    sub-coalition T of the miner coalition. Shares use exact n!·φ_i up to EXACT_MAX_PLAYERS
    members; beyond, the marginal totals over `samples` player orders shuffled from the chain
    seed (so every validator samples the same orders)."""
    scores, miner = draw_miner(plans, losses, seed)
    reward = mining_reward(sum(sum(member_savings(p, losses).values()) for p in plans), delta_ppm, losses)
    coalition = plans[miner].members
    game: Callable[[int], int] = lambda mask: worth(members_of(coalition, mask))
    if len(coalition) <= EXACT_MAX_PLAYERS:
        weights = shapley_exact_int(len(coalition), game)
    else:
        if samples <= 0:
            raise ValueError("a coalition this large needs a positive number of sampled orders")
        orders = (shuffled(len(coalition), derive_seed(seed, k + 1)) for k in range(samples))
        weights = marginal_totals(len(coalition), game, orders)
    shares = dict(zip(coalition, split_reward(reward, weights)))
    return Settlement(scores, miner, reward, shares, payoffs(plans, losses, shares, price_per_kwh), 0.0)
