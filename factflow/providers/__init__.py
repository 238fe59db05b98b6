"""Queue providers: what factflow knows of each one, one module per provider.

`spec.ProviderSpec` holds what the compiler and the launchers need (queue-name rule,
default dead-letter queue, execution-scoped names, the optional extra with its client) and
names the connector module (`factflow/connectors/NAME.py`) that holds the engine side: the
Bytewax source and sink, and optionally the deletion of a finished execution's queues.
The split keeps the compiler free of Bytewax and broker clients. `registry` finds a spec
by name: the built-ins here, or the `factflow.providers` entry-point group.
"""
