"""Projections: plain functions that fold contract events into figures.

A projection sees only what the event contract guarantees (type, data, time),
never storage details, so the ledger's replay and the reporting service run
the very same code and must agree on every figure.
"""
