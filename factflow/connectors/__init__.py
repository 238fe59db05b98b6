"""Bytewax sources and sinks per queue provider.

`registry` maps a provider name to its connector; `memory` (in-process, tests), `file`
(JSON lines), `init` (the init message), and the brokers each live in a module of their own.
`codec` turns records into messages and back.
"""
