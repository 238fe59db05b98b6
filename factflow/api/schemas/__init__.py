"""Pydantic bodies of the HTTP API, one module per domain whose models outgrew its router."""
