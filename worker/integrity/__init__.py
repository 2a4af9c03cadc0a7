"""Integrity: calls that never reached the books, gaps in our own books, and reconciliation with the providers."""
