"""Alerts: one row per condition and period (state), and the outbox rows that announce them (enqueue)."""
