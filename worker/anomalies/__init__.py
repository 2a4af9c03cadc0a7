"""Spend anomalies and month-end forecasts.

``history`` reads each scope's hourly spend and requests from the ledger (and keeps the learned
baseline per local day), ``rule`` is the robust test (median + k x MAD), ``detect`` judges the last
hour and raises/resolves ``spend.anomaly``, ``forecast`` projects month-end spend and
``projection`` raises ``budget.forecast``; ``bench`` backtests both on generated traffic.
"""
