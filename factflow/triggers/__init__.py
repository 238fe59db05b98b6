"""Triggers in: events (`POST /events`) and cron schedules that start executions.

They start executions through a `Starter` the server hands in (this package knows no
HTTP and no execution service), with an idempotency key per event and trigger or per
schedule tick, so a retried event or a tick seen by two instances starts one execution.
"""
