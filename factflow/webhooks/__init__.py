"""Webhooks out: subscriptions, signed deliveries from a Postgres queue, retries.

Events are rows in `events`, recorded in the transaction that changes the state; a
database trigger queues one delivery per matching subscription in that same transaction,
and `Dispatcher` (one per server instance, any number of instances) sends them.
"""
