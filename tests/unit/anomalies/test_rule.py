"""The robust rule: median + k x MAD, the MAD floored for a flat history, and the absolute floor."""

from __future__ import annotations

from decimal import Decimal as D

from worker.anomalies.rule import expect, median, unusual


def test_the_median_of_an_even_and_an_odd_count():
    assert median([D(3), D(1), D(2)]) == 2 and median([D(4), D(1), D(2), D(3)]) == D("2.5")


def test_one_wild_sample_moves_neither_the_median_nor_the_mad_much():
    usual = expect([D(10), D(11), D(9), D(10), D(12), D(200)], k=6, mad_floor=0)
    assert usual.median == D("10.5") and usual.mad == D("1") and usual.high == D("16.5")


def test_a_flat_history_gets_a_spread_of_a_fraction_of_its_median():
    usual = expect([D(10)] * 12, k=6, mad_floor=0.1)
    assert usual.mad == 0 and usual.high == D("16.0")
    assert not unusual(D("10.01"), usual, D(5)) and unusual(D(17), usual, D(5))


def test_nothing_under_the_floor_is_unusual_and_with_no_history_the_floor_decides():
    zero = expect([D(0)] * 12, k=6, mad_floor=0.1)
    assert not unusual(D("4.99"), zero, D(5)) and unusual(D(5), zero, D(5))
    assert unusual(D(6), None, D(5)) and not unusual(D(0), None, D(0))
