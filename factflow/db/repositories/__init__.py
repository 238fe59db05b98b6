"""Typed repository functions, one module per table family; all SQL lives here.

Each function takes a connection (autocommit, from `factflow.db.connect` or a pool) as
its first argument. Writes run inside `conn.transaction()`: committed on return, or a
savepoint when the caller already holds a transaction (so callers can group them).
"""
