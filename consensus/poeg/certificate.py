"""The LP optimality certificate of a coalition's settlement, checked in integers (issue 11).

The coalition LP (paper 003, eqs. 3.9–3.15, as `market.economics.coalition` states it) is a
transportation problem. Seller i has surplus s_i Wh, buyer j deficit b_j Wh; X_ij Wh go from
i to j inside the coalition and the rest to or from the EDC. Maximise the loss saved against
everyone trading with the EDC alone,

    primal   max Σ g_ij X_ij   s.t.  Σ_j X_ij ≤ s_i,  Σ_i X_ij ≤ b_j,  X ≥ 0
    dual     min Σ u_i s_i + Σ v_j b_j   s.t.  u_i + v_j ≥ g_ij,  u, v ≥ 0

with g_ij = f_id + f_dj − f_ij (`consensus.rules.coalition_lp` derives the integer
instance from the meters' balances and the members' distances). Weak duality gives Σ g X ≤ Σ u s + Σ v b for
every feasible pair; so a feasible plan and feasible duals with *equal* objectives are both
optimal. That is the whole check: a validator never re-runs the LP. It reads the plan and
the posted dual prices and checks, in integers and O(n·m):

    sizes and bounds · X ≥ 0 · row sums ≤ s_i · column sums ≤ b_j · u, v ≥ 0 ·
    u_i + v_j ≥ g_ij for every pair · objective = Σ g X = Σ u s + Σ v b

Units. Energy in Wh (the meters' unit). Loss rates and gains g_ij in ppm of the energy moved
(parts per million), so a gain is the Wh saved per 10⁶ Wh moved; dual
prices u_i, v_j are in the same ppm; the objective Σ g X is in ppm·Wh = µWh of loss saved.

The producer's side (`propose`) may use floats: HiGHS's dual simplex gives a vertex, and
since the constraint matrix is totally unimodular and s, b, g are integers, an optimal vertex
and optimal duals are integral, so rounding recovers them. The rounded duals are then
*repaired exactly*: integer label correcting on the difference constraints of dual feasibility
and complementary slackness, warm-started from HiGHS's duals (it finds the duals when the
rounded plan is optimal, and proves it is not, by a negative cycle, when it is not). If that
fails, the plan is solved again by an exact integer method, successive shortest paths with
Dijkstra on reduced costs. `propose` verifies what it returns: it never hands out a
certificate `verify` would refuse.
"""
from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import rlp

from vm.codec import MalformedRLP, fields, uint
from vm.codec import decode as rlp_decode

MAX_MEMBERS = 1024
"""Most sellers plus buyers in one coalition's certificate (n + m): the 1,000-prosumer bar of
issue 11, rounded up. Bounds verification at n·m ≤ 512² pair checks."""
MAX_WH = 10**9
"""Largest surplus, deficit or transfer of one member in one slot (1 GWh), far above any
prosumer's meter; a transfer is at most min(s_i, b_j) anyway."""
MAX_GAIN = 2_000_000
"""|g_ij| ≤ 2·10⁶ ppm: each of f_id, f_dj, f_ij is a loss rate in [0, 10⁶] ppm. Dual prices are
bounded by the same figure (an optimal u_i never needs to exceed max_j g_ij)."""
MAX_NUMBER_BYTES = 8
"""Every number in an encoded certificate fits 64 bits: the objective is at most
MAX_GAIN · MAX_MEMBERS · MAX_WH < 2⁶³."""
MAX_CERTIFICATE_BYTES = 20_000
"""Largest encoding `decode` reads. A worst case (1,024 plan entries of 12 bytes, 1,024 duals of
4 bytes, list prefixes and the objective) is 16.4 kB; see the test that builds it."""
CHECKS = ("instance", "shape", "plan", "row", "column", "dual-bound", "dual-feasibility",
          "objective", "duality-gap", "encoding")
"""The reasons a certificate can fail, in the order `verify` checks them."""

Entry = tuple[int, int, int]
"""(seller index i, buyer index j, X_ij Wh)."""


class CertificateError(ValueError):
    """A certificate (or its instance, or its bytes) that fails a check; `check` is one of
    `CHECKS`, the message says exactly what and where."""

    def __init__(self, check: str, message: str) -> None:
        assert check in CHECKS, check
        super().__init__(f"{check}: {message}")
        self.check = check
        self.message = message


@dataclass(frozen=True)
class Certificate:
    """An integer plan with the dual prices that prove it optimal."""

    plan: tuple[Entry, ...]
    """The non-zero X_ij: (i, j, wh) with wh ≥ 1, strictly ascending by (i, j), at most n + m
    entries (a vertex of the transportation polytope has no more)."""
    seller_prices: tuple[int, ...]
    """u_i ≥ 0 in ppm, one per seller: what one more Wh of seller i's surplus would save."""
    buyer_prices: tuple[int, ...]
    """v_j ≥ 0 in ppm, one per buyer."""
    objective: int
    """Σ g_ij X_ij in ppm·Wh (µWh of loss saved); equals Σ u_i s_i + Σ v_j b_j."""


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool, not numpy integers, not floats


def check_instance(surplus: Sequence[int], deficit: Sequence[int], gains: Sequence[Sequence[int]]) -> None:
    """The instance itself: sizes within MAX_MEMBERS, amounts in [0, MAX_WH], |g| ≤ MAX_GAIN."""
    n, m = len(surplus), len(deficit)
    if n + m > MAX_MEMBERS:
        raise CertificateError("instance", f"{n} sellers + {m} buyers exceed MAX_MEMBERS = {MAX_MEMBERS}")
    for name, amounts in (("surplus", surplus), ("deficit", deficit)):
        for k, wh in enumerate(amounts):
            if not _is_int(wh) or not 0 <= wh <= MAX_WH:
                raise CertificateError("instance", f"{name}[{k}] = {wh!r} is not an integer in [0, {MAX_WH}] Wh")
    if len(gains) != n:
        raise CertificateError("instance", f"gains has {len(gains)} rows for {n} sellers")
    for i, row in enumerate(gains):
        if len(row) != m:
            raise CertificateError("instance", f"gains row {i} has {len(row)} entries for {m} buyers")
        for j, g in enumerate(row):
            if not _is_int(g) or not -MAX_GAIN <= g <= MAX_GAIN:
                raise CertificateError("instance", f"gain[{i}][{j}] = {g!r} is not an integer in ±{MAX_GAIN} ppm")


# -- the validator's side ----------------------------------------------------------------------
def verify(certificate: Certificate, surplus: Sequence[int], deficit: Sequence[int],
           gains: Sequence[Sequence[int]]) -> None:
    """Return if `certificate` proves its plan optimal for this instance; raise
    `CertificateError` with the first failed check otherwise. Integers only, O(n·m)."""
    check_instance(surplus, deficit, gains)
    n, m = len(surplus), len(deficit)
    u, v, plan = certificate.seller_prices, certificate.buyer_prices, certificate.plan
    if len(u) != n or len(v) != m:
        raise CertificateError("shape", f"{len(u)} seller and {len(v)} buyer prices for {n} sellers and {m} buyers")
    if len(plan) > n + m:
        raise CertificateError("shape", f"{len(plan)} plan entries exceed n + m = {n + m} (not a vertex)")
    if not _is_int(certificate.objective):
        raise CertificateError("shape", f"objective {certificate.objective!r} is not an integer")

    out, into = [0] * n, [0] * m
    previous = (-1, -1)
    for k, entry in enumerate(plan):
        if not isinstance(entry, tuple) or len(entry) != 3 or not all(_is_int(x) for x in entry):
            raise CertificateError("plan", f"entry {k} {entry!r} is not three integers (i, j, wh)")
        i, j, wh = entry
        if not (0 <= i < n and 0 <= j < m):
            raise CertificateError("plan", f"entry {k} names pair ({i}, {j}) outside {n} × {m}")
        if (i, j) <= previous:
            raise CertificateError("plan", f"entry {k} pair ({i}, {j}) is not after ({previous[0]}, {previous[1]})")
        if not 1 <= wh <= MAX_WH:
            raise CertificateError("plan", f"X[{i}][{j}] = {wh} Wh is not in [1, {MAX_WH}] (zeros are left out)")
        previous = (i, j)
        out[i] += wh
        into[j] += wh
    for i in range(n):
        if out[i] > surplus[i]:
            raise CertificateError("row", f"seller {i} sends {out[i]} Wh but has a surplus of {surplus[i]} Wh")
    for j in range(m):
        if into[j] > deficit[j]:
            raise CertificateError("column", f"buyer {j} receives {into[j]} Wh but has a deficit of {deficit[j]} Wh")

    for name, prices in (("u", u), ("v", v)):
        for k, price in enumerate(prices):
            if not _is_int(price) or not 0 <= price <= MAX_GAIN:
                raise CertificateError("dual-bound", f"{name}[{k}] = {price!r} is not an integer in [0, {MAX_GAIN}] ppm")
    for i in range(n):
        ui, row = u[i], gains[i]
        for j in range(m):
            if ui + v[j] < row[j]:
                raise CertificateError("dual-feasibility",
                                       f"u[{i}] + v[{j}] = {ui} + {v[j]} < g[{i}][{j}] = {row[j]}")

    primal = sum(gains[i][j] * wh for i, j, wh in plan)
    if primal != certificate.objective:
        raise CertificateError("objective", f"stated objective {certificate.objective} but Σ g·X = {primal}")
    dual = sum(p * s for p, s in zip(u, surplus)) + sum(p * b for p, b in zip(v, deficit))
    if dual != primal:
        raise CertificateError("duality-gap", f"Σ g·X = {primal} but Σ u·s + Σ v·b = {dual}: "
                                              f"the plan is not proven optimal")


# -- canonical bytes ---------------------------------------------------------------------------
def encode(certificate: Certificate) -> bytes:
    """RLP [[[i, j, wh], …], [u…], [v…], objective]: one canonical form, at most 3 lists deep."""
    return rlp.encode([[list(entry) for entry in certificate.plan], list(certificate.seller_prices),
                       list(certificate.buyer_prices), certificate.objective])


def decode(data: bytes) -> Certificate:
    """The certificate `data` encodes canonically; `CertificateError("encoding", …)` otherwise.
    Checks the encoding and sizes only; `verify` checks the content against the instance."""
    if not isinstance(data, bytes):
        raise CertificateError("encoding", f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateError("encoding", f"{len(data)} bytes exceed MAX_CERTIFICATE_BYTES = {MAX_CERTIFICATE_BYTES}")
    try:
        plan_item, u_item, v_item, objective = fields(rlp_decode(data, max_depth=3), 4, "certificate")
        for name, item in (("plan", plan_item), ("seller prices", u_item), ("buyer prices", v_item)):
            if not isinstance(item, list):
                raise MalformedRLP(f"{name} must be a list")
        if len(u_item) + len(v_item) > MAX_MEMBERS:
            raise MalformedRLP(f"{len(u_item)} + {len(v_item)} prices exceed MAX_MEMBERS = {MAX_MEMBERS}")
        if len(plan_item) > len(u_item) + len(v_item):
            raise MalformedRLP(f"{len(plan_item)} plan entries exceed n + m = {len(u_item) + len(v_item)}")
        plan = tuple(tuple(uint(x, f"plan entry {k} field", MAX_NUMBER_BYTES) for x in fields(e, 3, f"plan entry {k}"))
                     for k, e in enumerate(plan_item))
        u = tuple(uint(x, f"u[{k}]", MAX_NUMBER_BYTES) for k, x in enumerate(u_item))
        v = tuple(uint(x, f"v[{k}]", MAX_NUMBER_BYTES) for k, x in enumerate(v_item))
        total = uint(objective, "objective", MAX_NUMBER_BYTES)
    except MalformedRLP as error:
        raise CertificateError("encoding", str(error)) from None
    return Certificate(plan, u, v, total)  # type: ignore[arg-type]


# -- the producer's side -----------------------------------------------------------------------
Method = Literal["highs", "exact"]


def propose(surplus: Sequence[int], deficit: Sequence[int], gains: Sequence[Sequence[int]],
            method: Method = "highs") -> Certificate:
    """An optimal plan with its certificate, verified before it is returned.

    "highs": HiGHS dual simplex (floats), rounded, duals repaired exactly; the exact method if
    the rounded plan cannot be certified. "exact": successive shortest paths in integers only."""
    if method not in ("highs", "exact"):
        raise ValueError(f"method must be 'highs' or 'exact', not {method!r}")
    check_instance(surplus, deficit, gains)
    n, m = len(surplus), len(deficit)
    g = np.array(gains, dtype=np.int64).reshape(n, m)
    s, b = np.array(surplus, dtype=np.int64), np.array(deficit, dtype=np.int64)
    if n == 0 or m == 0 or not (g > 0).any():
        certificate = _certificate(np.zeros((n, m), np.int64), np.zeros(n, np.int64), np.zeros(m, np.int64), g)
    else:
        found = _highs(s, b, g) if method == "highs" else None
        if found is None:
            found = _exact(s, b, g)
        x, u, v = found
        certificate = _certificate(x, u, v, g)
        if len(certificate.plan) > n + m:
            certificate = _certificate(_to_vertex(x, g), u, v, g)
    verify(certificate, surplus, deficit, gains)
    return certificate


def _certificate(x: np.ndarray, u: np.ndarray, v: np.ndarray, g: np.ndarray) -> Certificate:
    rows, cols = np.nonzero(x)  # row-major order: ascending (i, j)
    plan = tuple((int(i), int(j), int(x[i, j])) for i, j in zip(rows, cols))
    return Certificate(plan, tuple(int(p) for p in u), tuple(int(p) for p in v),
                       sum(int(g[i, j]) * wh for i, j, wh in plan))


def _highs(s: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """HiGHS's vertex and duals, rounded and made exact; None if they cannot be certified."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_array

    n, m = g.shape
    rows, cols = np.nonzero(g > 0)  # pairs with g ≤ 0 never help: X = 0 there is optimal
    k = len(rows)
    matrix = csr_array((np.ones(2 * k), (np.concatenate([rows, n + cols]), np.tile(np.arange(k), 2))),
                       shape=(n + m, k))
    result = linprog(-g[rows, cols].astype(float), A_ub=matrix, b_ub=np.concatenate([s, b]).astype(float),
                     bounds=(0, None), method="highs-ds")
    if result.status != 0:
        return None
    x = np.zeros((n, m), np.int64)
    x[rows, cols] = np.maximum(np.rint(result.x), 0).astype(np.int64)
    x = _clip(x, s, b, g)
    prices = np.maximum(np.rint(-result.ineqlin.marginals), 0).astype(np.int64)
    duals = _duals(x, s, b, g, prices[:n], prices[n:])
    return None if duals is None else (x, *duals)


def _clip(x: np.ndarray, s: np.ndarray, b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Take rounding excess off over-full rows and columns, lowest gain first."""
    for matrix, limit in ((x, s), (x.T, b)):
        for r in np.flatnonzero(matrix.sum(axis=1) > limit):
            excess = int(matrix[r].sum() - limit[r])
            gain = g[r] if matrix is x else g[:, r]
            for c in np.argsort(gain, kind="stable"):
                take = min(excess, int(matrix[r, c]))
                matrix[r, c] -= take
                excess -= take
                if excess == 0:
                    break
    return x


def _duals(x: np.ndarray, s: np.ndarray, b: np.ndarray, g: np.ndarray, u0: np.ndarray,
           v0: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer duals proving `x` optimal, or None if `x` is not optimal.

    Dual feasibility and complementary slackness are difference constraints on potentials
    (u_i, w_j = −v_j, z = 0):  w_j ≤ u_i − g_ij;  u_i ≤ w_j + g_ij where X_ij > 0;  z ≤ u_i;
    u_i ≤ z where row i is slack;  w_j ≤ z;  z ≤ w_j where column j is slack. Bellman-Ford
    relaxation from the warm start (u0, −v0, 0) settles in fewer than n + m + 1 rounds unless
    there is a negative cycle, which is exactly a way to improve `x`. Exact int64 arithmetic."""
    n, m = g.shape
    used = x > 0
    slack_row, slack_col = x.sum(axis=1) < s, x.sum(axis=0) < b
    big = np.int64(1) << 60
    xu, xw, xz = u0.astype(np.int64).copy(), -v0.astype(np.int64), np.int64(0)
    for _ in range(n + m + 2):
        new_w = np.minimum(np.minimum(xw, (xu[:, None] - g).min(axis=0)), xz)
        new_u = np.minimum(xu, np.where(used, new_w[None, :] + g, big).min(axis=1))
        new_u = np.where(slack_row, np.minimum(new_u, xz), new_u)
        new_z = min(xz, new_u.min(), new_w[slack_col].min(initial=big))
        if new_z == xz and np.array_equal(new_u, xu) and np.array_equal(new_w, xw):
            u, v = xu - xz, xz - xw
            u = np.maximum(0, (g - v[None, :]).max(axis=1))  # tighten: lowest feasible prices,
            v = np.maximum(0, (g - u[:, None]).max(axis=0))  # still optimal by weak duality
            return u, v
        xu, xw, xz = new_u, new_w, new_z
    return None


def _exact(s: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Successive shortest paths in Python integers: min-cost flow with costs −g_ij (g > 0 pairs),
    source → seller (cap s_i), buyer → sink (cap b_j), augmenting while a path still saves loss.
    Dijkstra on reduced costs c + π_a − π_b ≥ 0; π starts at the exact distances of the
    initial DAG. Optimal by the usual argument (no negative residual cycle at any flow value,
    and the cost is convex in the flow value)."""
    n, m = g.shape
    gain = g.tolist()
    cap_s, cap_b = [int(a) for a in s], [int(a) for a in b]
    forward = [[(j, gain[i][j]) for j in range(m) if gain[i][j] > 0] for i in range(n)]
    flow: list[dict[int, int]] = [{} for _ in range(m)]  # flow[j][i] = X_ij > 0
    out, into = [0] * n, [0] * m
    source, sink = n + m, n + m + 1
    pot = [0] * (n + m + 2)
    for i in range(n):
        for j, gij in forward[i]:
            pot[n + j] = min(pot[n + j], -gij)
    pot[sink] = min(pot[n:n + m], default=0)
    infinity = float("inf")  # only as "unreached" marker, never in arithmetic that is kept
    while True:
        dist: list[int | float] = [infinity] * (n + m + 2)
        parent = [-1] * (n + m + 2)
        dist[source] = 0
        heap = [(0, source)]
        while heap:
            d, a = heapq.heappop(heap)
            if d > dist[a] or a == sink:
                continue
            if a == source:
                edges = [(i, 0) for i in range(n) if out[i] < cap_s[i]]
            elif a < n:
                edges = [(n + j, -gij) for j, gij in forward[a]]
            else:
                j = a - n
                edges = [(i, gain[i][j]) for i in flow[j]]
                if into[j] < cap_b[j]:
                    edges.append((sink, 0))
            for c, cost in edges:
                nd = d + cost + pot[a] - pot[c]
                if nd < dist[c]:
                    dist[c], parent[c] = nd, a
                    heapq.heappush(heap, (nd, c))
        if dist[sink] == infinity or dist[sink] + pot[sink] - pot[source] >= 0:
            break
        reach = dist[sink]
        pot = [p + (d if d < reach else reach) for p, d in zip(pot, dist)]  # type: ignore[misc]
        path, c = [], sink
        while c != source:
            path.append((parent[c], c))
            c = parent[c]
        amount = min(cap_b[path[0][0] - n] - into[path[0][0] - n], cap_s[path[-1][1]] - out[path[-1][1]])
        for a, c in path:
            if n <= a < n + m and c < n:  # a reverse edge buyer → seller undoes flow
                amount = min(amount, flow[a - n][c])
        for a, c in path:
            if a < n and n <= c < n + m:
                flow[c - n][a] = flow[c - n].get(a, 0) + amount
            elif n <= a < n + m and c < n:
                flow[a - n][c] -= amount
                if flow[a - n][c] == 0:
                    del flow[a - n][c]
        out[path[-1][1]] += amount
        into[path[0][0] - n] += amount
    x = np.zeros((n, m), np.int64)
    for j in range(m):
        for i, wh in flow[j].items():
            x[i, j] = wh
    warm_u = np.maximum(0, np.array(pot[:n], np.int64) - pot[source])
    warm_v = np.maximum(0, pot[sink] - np.array(pot[n:n + m], np.int64))
    duals = _duals(x, s, b, g, warm_u, warm_v)
    if duals is None:
        raise RuntimeError("exact solver produced a plan its duals cannot certify (a bug)")
    return (x, *duals)


def _to_vertex(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Cancel cycles in the plan's support until it is a forest (≤ n + m − 1 entries). An optimal
    plan's support cycles have zero net gain, so row sums, column sums and the objective stay."""
    x = x.copy()
    n, m = x.shape
    while True:
        adjacency: dict[int, list[int]] = {}
        cycle = None
        for i, j in zip(*np.nonzero(x)):
            a, c = int(i), n + int(j)
            route = _route(adjacency, a, c)
            if route is not None:
                cycle = route + [a]
                break
            adjacency.setdefault(a, []).append(c)
            adjacency.setdefault(c, []).append(a)
        if cycle is None:
            return x
        edges = [(p, q) if p < n else (q, p) for p, q in zip(cycle, cycle[1:])]
        signs = [1 if k % 2 == 0 else -1 for k in range(len(edges))]
        if sum(sign * int(g[i, j - n]) for sign, (i, j) in zip(signs, edges)) != 0:
            raise RuntimeError("plan support has a cycle with non-zero gain: the plan is not optimal")
        amount = min(int(x[i, j - n]) for sign, (i, j) in zip(signs, edges) if sign < 0)
        for sign, (i, j) in zip(signs, edges):
            x[i, j - n] += sign * amount


def _route(adjacency: dict[int, list[int]], start: int, goal: int) -> list[int] | None:
    """The path from `start` to `goal` in a forest, or None."""
    parent = {start: start}
    stack = [start]
    while stack:
        a = stack.pop()
        if a == goal:
            path = [goal]
            while path[-1] != start:
                path.append(parent[path[-1]])
            return path[::-1]
        for c in adjacency.get(a, ()):
            if c not in parent:
                parent[c] = a
                stack.append(c)
    return None
