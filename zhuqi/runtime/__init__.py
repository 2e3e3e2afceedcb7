"""The small runtime every zhuqi service stands on.

Configuration, the event contract (CloudEvents envelopes validated against
`contracts/`), the transactional outbox relay, idempotent inbox consumers with
dead-lettering, metrics, structured logs and the HTTP base. Nothing here knows
about any one service's domain.
"""
