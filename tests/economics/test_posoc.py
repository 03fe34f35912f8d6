"""PoSOC scores, aggregator choice and the mining fee (eqs. 4.1–4.4, 4.17–4.20)."""
import numpy as np
import pytest

from consensus.sampling import derive_seed
from market.economics.posoc import hour_score, price_factor
from consensus.rules.posoc import (band, charge_fees, choose_aggregator, credit_profit, hour_score_int, open_book,
                                          pay_fee, price_factor_ppm)


def test_time_of_use_bands():
    assert [band(h) for h in (0, 6, 7, 10, 11, 16, 17, 18, 19, 23)] == \
        ["off", "off", "on", "on", "mid", "mid", "on", "on", "off", "off"]


def test_price_factors_from_table_4_1_means():
    assert price_factor(10.0, 6.8) == pytest.approx(3.2 / 6.8)  # δ_mid (4.3)
    assert price_factor(12.9, 6.8) == pytest.approx(6.1 / 6.8)  # δ_on (4.4)
    assert price_factor(6.8, 6.8) == 0.0
    assert price_factor(15.0, 6.8) == 1.0 and price_factor(5.0, 6.8) == 0.0  # 0 ≤ δ ≤ 1 (4.2)
    assert price_factor_ppm(1_000, 680) == 470_588 and price_factor_ppm(1_290, 680) == 897_058


def test_hour_scores_by_hand():
    # selling 7 kWh on-peak with δ = 0.9 scores 6.3; departing at SOC 0.3 adds (0.8 − 0.3)·42 = 21
    assert hour_score(0.9, 7.0, 0.0, 0.5, False, 0.8, 42.0) == pytest.approx(6.3)
    assert hour_score(0.9, 7.0, 0.0, 0.3, True, 0.8, 42.0) == pytest.approx(27.3)
    assert hour_score(0.5, 0.0, 3.5, 0.6, False, 0.8, 42.0) == pytest.approx(-1.75)  # charging lowers the score
    assert hour_score_int(900_000, 7_000, 0, 300_000, True, 800_000, 42_000) == 27_300
    assert hour_score_int(500_000, 0, 3_500, 600_000, False, 800_000, 42_000) == -1_750


def test_integer_and_float_hour_scores_agree():
    rng = np.random.default_rng(0)
    for _ in range(200):
        delta, d, c, soc, departing = rng.random(), rng.random() * 7, rng.random() * 7, 0.2 + rng.random() * 0.6, bool(rng.integers(2))
        exact = hour_score(round(delta * 1e6) / 1e6, round(d * 1e3) / 1e3, round(c * 1e3) / 1e3,
                           round(soc * 1e6) / 1e6, departing, 0.8, 42.0)
        integer = hour_score_int(round(delta * 1e6), round(d * 1e3), round(c * 1e3), round(soc * 1e6),
                                 departing, 800_000, 42_000)
        assert abs(exact * 1000 - integer) <= 2


def test_aggregator_draw_follows_window_scores():
    scores = [27_300, -1_750, 5_000, 0]
    picks = [choose_aggregator(scores, derive_seed(b"window", k)) for k in range(2000)]
    assert picks == [choose_aggregator(scores, derive_seed(b"window", k)) for k in range(2000)]
    counts = np.bincount(picks, minlength=4)
    assert counts[0] > counts[2] > counts[1]
    assert counts[0] / 2000 == pytest.approx(27_301 / 32_304, abs=0.03)


def test_fees_are_charged_and_unpaid_profit_is_confiscated_until_paid():
    book, reward = charge_fees(open_book(3), [1_000, -500, 200], beta_ppm=50_000)
    assert reward == 60 and book.owed == (50, 0, 10)  # a loss owes nothing (4.20)
    book, paid = credit_profit(book, 0, 700)
    assert paid == 0 and book.held == (700, 0, 0)
    book, paid = credit_profit(book, 1, 300)
    assert paid == 300
    book, released = pay_fee(book, 0, 20)
    assert released == 0 and book.owed[0] == 30
    book, released = pay_fee(book, 0, 30)
    assert released == 700 and book.owed[0] == 0 and book.held[0] == 0
    with pytest.raises(ValueError):
        charge_fees(book, [1], beta_ppm=0)
