"""Coalition formation for PoEG (thesis §3.3, Algorithm 3): each coalition's loss-minimising
LP (eqs. 3.9–3.15) and merge-and-split to a stable partition.

The LP. Seller i has surplus s_i, buyer j deficit b_j; X_ij is what i sends j inside the
coalition and the rest goes to or comes from the EDC (E_id, E_dj). Minimising the total
loss Σ f_ij X_ij + Σ f_id E_id + Σ f_dj E_dj subject to the balances (3.12–3.14) is the
same as maximising the loss saved against acting alone, G(S) = Σ g_ij X_ij with
g_ij = f_id + f_dj − f_ij, subject to Σ_j X_ij ≤ s_i and Σ_i X_ij ≤ b_j. G(S) is E_S^save
(3.19), and since 𝒫𝒮_S = Σ 𝒫𝒮_i + G(S) (3.5–3.6) the LP also maximises the coalition's
proof score (3.9).

Fast and exact. PuLP states the general LP and hands it to HiGHS in-process (through
highspy, the default) or to CBC (a subprocess per LP, several times slower). When the
coalition has one seller or one buyer the LP is a fractional knapsack with unit weights,
and filling the spokes in descending g is optimal; that closed form, with its dual prices,
replaces the solver there. Every solution carries the dual prices u_i, v_j of the balance
constraints.

Merge-and-split with the Pareto order (Definitions 2–4). A merge is profitable when no
member's 𝒫𝒮_Si falls and the total rises. Duals make the search exact without trying every
pair: if u_i + v_j ≥ g_ij for every seller i of one coalition and buyer j of the other, the
two optimal plans side by side are optimal for the union (weak duality), G(A∪B) = G(A) + G(B),
and no member can gain without another losing. Only coalition pairs with a violated dual
constraint are ever handed to the LP. A split is never profitable: the parts' plans side by
side are a feasible plan of S, so G(P) + G(Q) ≤ G(S), and Σ_{i∈S} 𝒫𝒮_Si = Σ 𝒫𝒮_i + G(S);
a split cannot raise any member's score without lowering another's. Algorithm 3's split step
therefore never fires once every coalition's plan is optimal; `profitable_split` states the
rule so tests and validators can check it.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pulp

from market.economics.community import distances_km, edc_distances_km
from market.economics.line_loss import FloatLosses
from consensus.rules.community import Community
from consensus.rules.line_loss import LossModel
from consensus.rules.poeg import Plan, coalition_saving, member_scores

Solver = Literal["highs", "cbc"]
SOLVERS: tuple[Solver, ...] = ("highs", "cbc")
TOLERANCE_KWH = 1e-9
"""Score changes smaller than this are solver noise, not a preference."""

Coalition = frozenset[int]


@dataclass(frozen=True)
class Solution:
    """A coalition's optimal plan and what it is worth."""

    plan: Plan[float]
    gain: float
    """G(S) = E_S^save: kWh of loss saved against every member acting alone."""
    scores: dict[int, float]
    """𝒫𝒮_Si of every member (eq. 3.6)."""
    shadow: dict[int, float]
    """Dual price of each member's balance constraint (kWh saved per extra kWh traded)."""


@dataclass(frozen=True)
class Round:
    """One line of Table 3.2."""

    partition: tuple[tuple[int, ...], ...]
    coalition_scores: tuple[float, ...]
    member_scores: tuple[float, ...]


@dataclass(frozen=True)
class Formation:
    """A stable partition with each coalition's optimal plan and the iteration log."""

    partition: tuple[tuple[int, ...], ...]
    """Coalitions, each ascending, ordered by their first member."""
    solutions: tuple[Solution, ...]
    rounds: tuple[Round, ...]
    optimiser_calls: int
    """How many coalition LPs (or closed forms) were solved."""


class CoalitionGame:
    """The community's coalition game in floats: optimal plans cached by member set."""

    def __init__(self, community: Community, model: LossModel = LossModel(), solver: Solver = "highs",
                 closed_form: bool = True) -> None:
        self.community = community
        self.losses = FloatLosses(community, model)
        self.solver = lp_solver(solver)
        self.closed_form = closed_form  # one-seller / one-buyer coalitions by the greedy closed form
        self.balance = np.asarray(community.balance_wh, dtype=float) / 1000.0
        self.gain = self.losses.edc_rate[:, None] + self.losses.edc_rate[None, :] - self.losses.pair_rate
        self._solved: dict[Coalition, Solution] = {}

    @property
    def optimiser_calls(self) -> int:
        return len(self._solved)

    def solve(self, members: Iterable[int]) -> Solution:
        """The optimal plan of a coalition (eqs. 3.11–3.15), computed once per member set."""
        key = frozenset(int(m) for m in members)
        if key not in self._solved:
            self._solved[key] = self._optimise(tuple(sorted(key)))
        return self._solved[key]

    def _optimise(self, members: tuple[int, ...]) -> Solution:
        sellers = [i for i in members if self.balance[i] > 0]
        buyers = [j for j in members if self.balance[j] < 0]
        if not sellers or not buyers:
            trades: list[tuple[int, int, float]] = []
            shadow = dict.fromkeys(members, 0.0)
        elif self.closed_form and (len(sellers) == 1 or len(buyers) == 1):
            trades, shadow = self._star(sellers, buyers)
        else:
            trades, shadow = self._linear_program(sellers, buyers)
        for i in members:
            shadow.setdefault(i, 0.0)
        plan = Plan(members, tuple(sorted((s, b, float(e)) for s, b, e in trades if e > TOLERANCE_KWH)))
        return Solution(plan, coalition_saving(plan, self.losses), member_scores(plan, self.losses), shadow)

    def _star(self, sellers: list[int], buyers: list[int]) -> tuple[list[tuple[int, int, float]], dict[int, float]]:
        """One hub and its spokes: fill spokes in descending gain (a unit-weight fractional
        knapsack, for which greedy is optimal). The hub's dual is the best gain it leaves
        unserved; each spoke's is what its gain exceeds the hub's."""
        hub_is_seller = len(sellers) == 1
        hub = sellers[0] if hub_is_seller else buyers[0]
        spokes = sorted(buyers if hub_is_seller else sellers, key=lambda k: (-self.gain[hub, k], k))
        capacity = abs(self.balance[hub])
        trades, unserved_gain = [], 0.0
        for spoke in spokes:
            gain = float(self.gain[hub, spoke])
            amount = min(capacity, abs(self.balance[spoke])) if gain > 0 else 0.0
            if amount > 0:
                trades.append((hub, spoke, amount) if hub_is_seller else (spoke, hub, amount))
                capacity -= amount
            if amount < abs(self.balance[spoke]):
                unserved_gain = max(unserved_gain, gain)
        shadow = {hub: unserved_gain}
        shadow.update({k: max(0.0, float(self.gain[hub, k]) - unserved_gain) for k in spokes})
        return trades, shadow

    def _linear_program(self, sellers: list[int], buyers: list[int]) -> tuple[list[tuple[int, int, float]], dict[int, float]]:
        """Eqs. 3.11–3.14 as written: minimise the loss of inside trades and EDC legs subject
        to every member's balance. Returns trades and u_i = f_id − y_i, v_j = f_dj − z_j from
        the equality duals y, z (the duals of the equivalent max-gain form)."""
        rate, edc = self.losses.pair_rate, self.losses.edc_rate
        supply = [float(self.balance[i]) for i in sellers]
        demand = [float(-self.balance[j]) for j in buyers]
        x, duals = _solve_lp(rate[np.ix_(sellers, buyers)], edc[sellers], edc[buyers], supply, demand, self.solver)
        trades = [(s, b, float(x[a, c])) for a, s in enumerate(sellers) for c, b in enumerate(buyers)]
        shadow = {k: max(0.0, float(edc[k]) - float(duals[n])) for n, k in enumerate(sellers + buyers)}
        return trades, shadow


def lp_solver(name: Solver) -> pulp.LpSolver:
    """PuLP's HiGHS, in-process through highspy, or PuLP's bundled CBC, both silent."""
    if name == "highs":
        return pulp.HiGHS(msg=False)
    if name != "cbc":
        raise ValueError(f"unknown LP solver {name!r}; choose one of {SOLVERS}")
    with warnings.catch_warnings():
        # PuLP 3.3 deprecates PULP_CBC_CMD for COIN_CMD with a CBC installed from the
        # `pulp[cbc]` extra (cbcbox), which gridnode does not ship; the binary bundled
        # with PuLP 3.x is the only CBC here, so its notice is silenced where it is made.
        warnings.filterwarnings("ignore", message="PULP_CBC_CMD is deprecated", category=DeprecationWarning)
        return pulp.PULP_CBC_CMD(msg=False)


def _solve_lp(rate: np.ndarray, seller_edc: np.ndarray, buyer_edc: np.ndarray, supply: Sequence[float],
              demand: Sequence[float], solver: pulp.LpSolver) -> tuple[np.ndarray, list[float]]:
    """The LP in PuLP; returns X and the equality duals (sellers, then buyers). Expressions are
    built from (variable, coefficient) lists: PuLP's operator overloading costs more than
    HiGHS's solve on these small LPs."""
    ns, nb = rate.shape
    problem = pulp.LpProblem("coalition_loss", pulp.LpMinimize)
    x = [[problem.add_variable(f"x_{a}_{c}", lowBound=0) for c in range(nb)] for a in range(ns)]
    to_edc = [problem.add_variable(f"e_{a}_d", lowBound=0) for a in range(ns)]
    from_edc = [problem.add_variable(f"e_d_{c}", lowBound=0) for c in range(nb)]
    problem.setObjective(pulp.LpAffineExpression(
        [(x[a][c], float(rate[a, c])) for a in range(ns) for c in range(nb)]
        + [(v, float(f)) for v, f in zip(to_edc, seller_edc)]
        + [(v, float(f)) for v, f in zip(from_edc, buyer_edc)]))
    # (3.12) a seller's surplus left after inside trades goes to the EDC;
    # (3.13) a buyer's deficit left after inside trades comes from the EDC.
    rows = [[*x[a], to_edc[a]] for a in range(ns)] + [[*(x[a][c] for a in range(ns)), from_edc[c]] for c in range(nb)]
    balances = [pulp.LpConstraint(pulp.LpAffineExpression([(v, 1.0) for v in row]), pulp.LpConstraintEQ,
                                  f"balance_{k}", float(rhs))
                for k, (row, rhs) in enumerate(zip(rows, [*supply, *demand]))]
    for constraint in balances:
        problem.addConstraint(constraint)
    status = problem.solve(solver)
    if pulp.LpStatus[status] != "Optimal":
        raise RuntimeError(f"coalition LP not solved: {pulp.LpStatus[status]}")
    values = np.array([[x[a][c].value() or 0.0 for c in range(nb)] for a in range(ns)])
    return values, [constraint.pi for constraint in balances]


def initial_partition(community: Community) -> list[Coalition]:
    """Algorithm 3, lines 8–18: pair each seller with a buyer nearer to it than either is to the
    EDC, closest pairs first; everyone left unpaired starts alone."""
    bal = np.asarray(community.balance_wh)
    sellers, buyers = np.flatnonzero(bal > 0), np.flatnonzero(bal < 0)
    dist, edc = distances_km(community), edc_distances_km(community)
    near = dist[np.ix_(sellers, buyers)]
    close = (near < edc[sellers][:, None]) & (near < edc[buyers][None, :])
    rows, cols = np.nonzero(close)
    order = np.lexsort((buyers[cols], sellers[rows], near[rows, cols]))
    paired: set[int] = set()
    partition: list[Coalition] = []
    for k in order:
        seller, buyer = int(sellers[rows[k]]), int(buyers[cols[k]])
        if seller not in paired and buyer not in paired:
            paired.update((seller, buyer))
            partition.append(frozenset((seller, buyer)))
    partition.extend(frozenset((i,)) for i in range(community.size) if i not in paired)
    return partition


def improves(game: CoalitionGame, before: Sequence[Coalition], after: Sequence[Coalition]) -> bool:
    """Pareto order (Definitions 2 and 4): regrouping the same members from `before` into `after`
    is preferred when no member's proof score falls and the total saving rises."""
    old = {i: s for c in before for i, s in game.solve(c).scores.items()}
    new = {i: s for c in after for i, s in game.solve(c).scores.items()}
    gain_before = sum(game.solve(c).gain for c in before)
    gain_after = sum(game.solve(c).gain for c in after)
    return gain_after > gain_before + TOLERANCE_KWH and all(new[i] >= old[i] - TOLERANCE_KWH for i in old)


def profitable_merge(game: CoalitionGame, partition: Sequence[Coalition]) -> tuple[Coalition, Coalition] | None:
    """Any two coalitions whose merge is preferred (brute force over all pairs)."""
    for a, first in enumerate(partition):
        for second in partition[a + 1:]:
            if improves(game, [first, second], [first | second]):
                return first, second
    return None


def profitable_split(game: CoalitionGame, coalition: Coalition) -> tuple[Coalition, Coalition] | None:
    """Any split of `coalition` in two that is preferred (brute force over all bipartitions)."""
    members = sorted(coalition)
    head, rest = members[0], members[1:]
    for mask in range(1 << len(rest)):
        part = frozenset([head] + [m for bit, m in enumerate(rest) if mask >> bit & 1])
        if part != coalition and improves(game, [coalition], [part, coalition - part]):
            return part, coalition - part
    return None


def form_coalitions(community: Community, model: LossModel = LossModel(), solver: Solver = "highs",
                    closed_form: bool = True) -> Formation:
    """Algorithm 3 up to the stable partition: singleton scores, initial pairs, then rounds of
    profitable merges until none is left. Each round tries candidate pairs in descending order
    of their largest dual violation (the most loss the union could save first) and merges a
    coalition at most once per round."""
    game = CoalitionGame(community, model, solver, closed_form)
    partition = [frozenset((i,)) for i in range(community.size)]
    rounds = [_round(game, partition)]
    partition = initial_partition(community)
    rounds.append(_round(game, partition))
    rejected: set[frozenset[Coalition]] = set()
    while True:
        touched: set[Coalition] = set()
        for first, second in _merge_candidates(game, partition):
            if first in touched or second in touched or frozenset((first, second)) in rejected:
                continue
            if improves(game, [first, second], [first | second]):
                touched.update((first, second))
                partition = [c for c in partition if c not in (first, second)] + [first | second]
            else:
                rejected.add(frozenset((first, second)))
        rounds.append(_round(game, partition))
        if not touched:
            break
    ordered = _canonical(partition)
    return Formation(ordered, tuple(game.solve(c) for c in ordered), tuple(rounds), game.optimiser_calls)


def _merge_candidates(game: CoalitionGame, partition: Sequence[Coalition]) -> list[tuple[Coalition, Coalition]]:
    """Coalition pairs with some seller i and buyer j in different coalitions and
    g_ij > u_i + v_j: the only pairs whose union can save more than the two apart."""
    n = game.community.size
    label = np.empty(n, dtype=np.int64)
    shadow = np.zeros(n)
    ordered = _canonical(partition)
    for k, members in enumerate(ordered):
        label[list(members)] = k
        for i, price in game.solve(members).shadow.items():
            shadow[i] = price
    sellers, buyers = np.flatnonzero(game.balance > 0), np.flatnonzero(game.balance < 0)
    violation = game.gain[np.ix_(sellers, buyers)] - shadow[sellers][:, None] - shadow[buyers][None, :]
    apart = label[sellers][:, None] != label[buyers][None, :]
    rows, cols = np.nonzero(apart & (violation > TOLERANCE_KWH))
    first, second = label[sellers[rows]], label[buyers[cols]]
    low, high = np.minimum(first, second), np.maximum(first, second)
    order = np.lexsort((high, low, -violation[rows, cols]))
    seen: set[tuple[int, int]] = set()
    pairs = []
    for k in order:
        key = (int(low[k]), int(high[k]))
        if key not in seen:
            seen.add(key)
            pairs.append((frozenset(ordered[key[0]]), frozenset(ordered[key[1]])))
    return pairs


def _canonical(partition: Iterable[Coalition]) -> tuple[tuple[int, ...], ...]:
    return tuple(sorted(tuple(sorted(c)) for c in partition))


def _round(game: CoalitionGame, partition: Sequence[Coalition]) -> Round:
    ordered = _canonical(partition)
    scores = [0.0] * game.community.size
    for members in ordered:
        for i, score in game.solve(members).scores.items():
            scores[i] = score
    return Round(ordered, tuple(sum(game.solve(c).scores.values()) for c in ordered), tuple(scores))
