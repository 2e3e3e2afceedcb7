"""Domain model of the registry: reference data, rules and event-sourced aggregates.

Nothing in this package touches the database or the key store; the application
(``services.registry.application``) wires the domain to persistence.
"""
