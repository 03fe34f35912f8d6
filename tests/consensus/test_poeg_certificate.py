"""PoEG's settlement certificate: the producer proposes a plan with dual prices, a validator
checks it in integers and refuses any tampering with the exact reason."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import rlp
from consensus.poeg import certificate as producer
from consensus.poeg.certificate import (
    MAX_CERTIFICATE_BYTES, MAX_GAIN, MAX_MEMBERS, MAX_WH, Certificate, CertificateError, decode, encode, propose,
    verify)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from market.economics.community import random_community
from consensus.rules.coalition_lp import coalition_instance, pair_gains
from consensus.rules.line_loss import PPM, LossModel
from scipy.optimize import linprog

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def instances(draw, max_side: int = 8, max_wh: int = 20_000, min_side: int = 0):
    """(surplus, deficit, gains) with gains in the range a real loss model gives (±112,000 ppm)."""
    n = draw(st.integers(min_side, max_side))
    m = draw(st.integers(min_side, max_side))
    surplus = draw(st.lists(st.integers(0, max_wh), min_size=n, max_size=n))
    deficit = draw(st.lists(st.integers(0, max_wh), min_size=m, max_size=m))
    gains = [draw(st.lists(st.integers(-56_000, 112_000), min_size=m, max_size=m)) for _ in range(n)]
    return surplus, deficit, gains


def optimum(surplus, deficit, gains) -> int:
    """An independent optimum: scipy's HiGHS on the dense LP over every pair, rounded."""
    n, m = len(surplus), len(deficit)
    if n == 0 or m == 0:
        return 0
    rows = [[1.0 if k // m == i else 0.0 for k in range(n * m)] for i in range(n)]
    cols = [[1.0 if k % m == j else 0.0 for k in range(n * m)] for j in range(m)]
    result = linprog([-float(g) for row in gains for g in row], A_ub=rows + cols,
                     b_ub=[float(a) for a in surplus + deficit], bounds=(0, None), method="highs")
    assert result.status == 0
    return round(-result.fun)


def refused(certificate, instance) -> str:
    with pytest.raises(CertificateError) as error:
        verify(certificate, *instance)
    return error.value.check


def with_plan(certificate: Certificate, plan) -> Certificate:
    return replace(certificate, plan=tuple(plan))


def loads(certificate: Certificate, n: int, m: int) -> tuple[list[int], list[int]]:
    out, into = [0] * n, [0] * m
    for i, j, wh in certificate.plan:
        out[i] += wh
        into[j] += wh
    return out, into


# -- the producer's certificate is optimal and verifies --------------------------------------
@SETTINGS
@given(instances())
def test_proposed_certificates_verify_and_are_optimal(instance):
    certificate = propose(*instance)
    verify(certificate, *instance)
    assert certificate.objective == optimum(*instance)
    assert len(certificate.plan) <= len(instance[0]) + len(instance[1])


@SETTINGS
@given(instances(max_side=6))
def test_the_exact_integer_method_finds_the_same_optimum(instance):
    exact = propose(*instance, method="exact")
    verify(exact, *instance)
    assert exact.objective == propose(*instance).objective


@settings(max_examples=25, deadline=None)
@given(instances(max_side=5, max_wh=MAX_WH, min_side=1),
       st.lists(st.integers(-MAX_GAIN, MAX_GAIN), min_size=25, max_size=25))
def test_extreme_magnitudes_still_certify(instance, extreme):
    surplus, deficit, _ = instance
    gains = [[extreme[5 * i + j] for j in range(len(deficit))] for i in range(len(surplus))]
    certificate = propose(surplus, deficit, gains)
    verify(certificate, surplus, deficit, gains)
    assert certificate.objective == propose(surplus, deficit, gains, method="exact").objective


def test_a_community_coalition_of_fifty_by_fifty():
    """A scale case from the simulation's own generator, faithful per-km loss model."""
    community = random_community(140, "normal", np.random.default_rng(1))
    instance = coalition_instance(community)
    assert len(instance.sellers) >= 50 and len(instance.buyers) >= 50
    sellers, buyers = instance.sellers[:50], instance.buyers[:50]
    sub = coalition_instance(community, sellers + buyers)
    data = (list(sub.surplus), list(sub.deficit), [list(row) for row in sub.gains])
    certificate = propose(*data)
    verify(certificate, *data)
    assert certificate.objective == optimum(*data) > 0
    assert propose(*data, method="exact").objective == certificate.objective
    assert decode(encode(certificate)) == certificate


def test_gains_are_edc_legs_minus_the_direct_leg():
    # seller 3 km from the EDC, buyer 4 km, 5 km apart: 0.27 %/km, no floor
    assert pair_gains([3000], [4000], [[5000]]) == [[8100 + 10800 - 13500]]
    assert LossModel().ppm(100_000) == 56_000  # the cap
    assert MAX_GAIN == 2 * PPM
    assert pair_gains([0], [0], [[1000]]) == [[-2700]]  # two prosumers at the EDC gain nothing by trading


def test_nothing_to_gain_gives_the_empty_plan():
    instance = ([500, 700], [300], [[-10], [0]])
    certificate = propose(*instance)
    assert certificate == Certificate((), (0, 0), (0,), 0)
    verify(certificate, *instance)


def test_the_producer_repairs_duals_exactly_and_detects_a_suboptimal_plan():
    """The producer's integer dual pass: from a cold start it finds prices that certify an
    optimal plan; for a plan one Wh short of optimal it finds none (a negative cycle)."""
    s, b = np.array([30, 50, 20]), np.array([40, 40, 25])
    g = np.array([[9, 4, 7], [3, 8, 8], [6, 2, 1]])
    best = propose(s.tolist(), b.tolist(), g.tolist(), method="exact")
    x = np.zeros((3, 3), np.int64)
    for i, j, wh in best.plan:
        x[i, j] = wh
    u, v = producer._duals(x, s, b, g, np.zeros(3, np.int64), np.zeros(3, np.int64))
    repaired = Certificate(best.plan, tuple(int(p) for p in u), tuple(int(p) for p in v), best.objective)
    verify(repaired, s.tolist(), b.tolist(), g.tolist())
    i, j, _ = best.plan[0]
    x[i, j] -= 1
    assert producer._duals(x, s, b, g, u, v) is None


def test_a_plan_with_a_support_cycle_is_reduced_to_a_vertex():
    """Ties make optimal plans with cycles in their support; the certificate carries a vertex."""
    g = np.full((3, 3), 10, np.int64)
    x = np.full((3, 3), 2, np.int64)  # every pair used: 9 entries > n + m = 6
    vertex = producer._to_vertex(x, g)
    assert np.count_nonzero(vertex) <= 5
    assert (vertex.sum(axis=1) == 6).all() and (vertex.sum(axis=0) == 6).all() and (vertex >= 0).all()


# -- every single tampering is refused with its reason -----------------------------------------
@SETTINGS
@given(instances(min_side=1), st.data())
def test_tampered_transfers_are_refused(instance, data):
    surplus, deficit, gains = instance
    certificate = propose(*instance)
    if not certificate.plan:
        return
    n, m = len(surplus), len(deficit)
    k = data.draw(st.integers(0, len(certificate.plan) - 1))
    i, j, wh = certificate.plan[k]
    plan = list(certificate.plan)
    out, into = loads(certificate, n, m)

    # X_ij + 1: an optimal plan with X_ij > 0 and g_ij > 0 has row i or column j full
    plan[k] = (i, j, wh + 1)
    assert out[i] == surplus[i] or into[j] == deficit[j]
    assert refused(with_plan(certificate, plan), instance) == ("row" if out[i] == surplus[i] else "column")

    # X_ij − 1: the stated objective no longer matches (or a zero entry is left in)
    plan[k] = (i, j, wh - 1)
    assert refused(with_plan(certificate, plan), instance) == ("plan" if wh == 1 else "objective")

    # X_ij − 1 with the objective restated: feasible, but the duals prove it is not optimal
    lesser = [e for e in plan if e[2] > 0]
    restated = Certificate(tuple(lesser), certificate.seller_prices, certificate.buyer_prices,
                           sum(gains[a][c] * x for a, c, x in lesser))
    assert refused(restated, instance) == "duality-gap"

    # a row over its surplus
    plan[k] = (i, j, wh + surplus[i] - out[i] + 1)
    assert refused(with_plan(certificate, plan), instance) == "row"


@SETTINGS
@given(instances(min_side=1), st.data())
def test_tampered_prices_and_objective_are_refused(instance, data):
    certificate = propose(*instance)
    n, m = len(instance[0]), len(instance[1])
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, m - 1))
    u, v = list(certificate.seller_prices), list(certificate.buyer_prices)
    u[i] -= 1
    assert refused(replace(certificate, seller_prices=tuple(u)), instance) == (
        "dual-bound" if u[i] < 0 else "dual-feasibility")
    v[j] -= 1
    assert refused(replace(certificate, buyer_prices=tuple(v)), instance) == (
        "dual-bound" if v[j] < 0 else "dual-feasibility")
    for delta in (1, -1):
        assert refused(replace(certificate, objective=certificate.objective + delta), instance) == "objective"
    # raising a price that some s_i or b_j weighs opens a duality gap
    if instance[0][i] > 0 and certificate.seller_prices[i] < MAX_GAIN:
        higher = list(certificate.seller_prices)
        higher[i] += 1
        assert refused(replace(certificate, seller_prices=tuple(higher)), instance) == "duality-gap"


def test_malformed_plans_shapes_and_instances_are_refused():
    instance = ([100, 100], [100, 100], [[50, 10], [10, 50]])
    certificate = propose(*instance)
    assert certificate.plan == ((0, 0, 100), (1, 1, 100))
    assert certificate.objective == 10_000
    cases = {
        "plan": [with_plan(certificate, certificate.plan[::-1]),              # out of order
                 with_plan(certificate, certificate.plan[:1] * 2),            # duplicate pair
                 with_plan(certificate, ((0, 2, 1),)),                        # no buyer 2
                 with_plan(certificate, ((0, 0, -5), (1, 1, 100))),           # negative
                 with_plan(certificate, ((0, 0, 100.0), (1, 1, 100)))],       # a float
        "shape": [replace(certificate, seller_prices=(50,)),
                  with_plan(certificate, ((0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1), (1, 1, 1))),
                  replace(certificate, objective=10_000.0)],
        "dual-bound": [replace(certificate, seller_prices=(MAX_GAIN + 1, 50))],
    }
    for check, forged in cases.items():
        for bad in forged:
            assert refused(bad, instance) == check, bad
    for bad_instance in (([100.0, 100], [100, 100], instance[2]), ([MAX_WH + 1, 100], [100, 100], instance[2]),
                         ([100, 100], [100, 100], [[50, 10]]), ([100, 100], [100, 100], [[50, 10], [10, 3 * PPM]]),
                         ([0] * MAX_MEMBERS, [0], [[0]] * MAX_MEMBERS)):
        with pytest.raises(CertificateError) as error:
            verify(certificate, *bad_instance)
        assert error.value.check == "instance"
        with pytest.raises(CertificateError):
            propose(*bad_instance)


# -- canonical bytes ---------------------------------------------------------------------------
@SETTINGS
@given(instances())
def test_encoding_round_trips_canonically(instance):
    certificate = propose(*instance)
    data = encode(certificate)
    assert decode(data) == certificate
    assert encode(decode(data)) == data
    verify(decode(data), *instance)


def test_malformed_bytes_are_refused_with_a_reason():
    certificate = propose([100, 100], [100, 100], [[50, 10], [10, 50]])
    data = encode(certificate)
    forged = {
        "bytes after": data + b"\x00",
        "runs past": data[:-1],
        "leading zero": rlp.encode([[[0, 0, b"\x00\x64"]], [50, 0], [0, 50], 10_000]),
        "must have 4 fields": rlp.encode([[], [], []]),
        "must have 3 fields": rlp.encode([[[0, 0]], [50, 0], [0, 50], 10_000]),
        "nested too deep": rlp.encode([[[[0], 0, 1]], [], [], 0]),
        "exceeds 64 bits": rlp.encode([[], [2**64], [], 0]),
        "must be a list": rlp.encode([b"", [], [], 0]),
        "exceed n + m": rlp.encode([[[0, 0, 1], [0, 1, 1], [1, 0, 1]], [0], [0], 0]),
        "exceed MAX_MEMBERS": rlp.encode([[], [0] * MAX_MEMBERS, [0], 0]),
        "exceed MAX_CERTIFICATE_BYTES": b"\xc0" * (MAX_CERTIFICATE_BYTES + 1),
    }
    for reason, bad in forged.items():
        with pytest.raises(CertificateError) as error:
            decode(bad)
        assert error.value.check == "encoding" and reason in error.value.message, (reason, error.value)
    with pytest.raises(CertificateError):
        decode(bytearray(data))


def test_the_largest_certificate_fits_the_byte_bound():
    """MAX_MEMBERS members, n + m plan entries, every number at its bound."""
    n = m = MAX_MEMBERS // 2
    plan = tuple(sorted((k % n, (k + k // n) % m, MAX_WH) for k in range(n + m)))
    assert len({(i, j) for i, j, _ in plan}) == n + m
    worst = Certificate(plan, (MAX_GAIN,) * n, (MAX_GAIN,) * m, MAX_GAIN * MAX_MEMBERS * MAX_WH)
    assert len(encode(worst)) <= MAX_CERTIFICATE_BYTES
    assert decode(encode(worst)) == worst
