"""Writers: outputs that are not queues (`outbound: [{sink: {type: NAME, config: ...}}]`).

base.py has the engine-neutral `Writer` protocol (batched, durable before `write_batch`
returns, idempotent by message id) and its `WriterContext`; registry.py finds writer
classes by type (built-ins, the `factflow.writers` entry-point group, dotted paths);
builtin/ holds the writers factflow ships. The runtime wraps a writer as a Bytewax sink.
"""

from factflow.writers.base import Writer, WriterContext

__all__ = ["Writer", "WriterContext"]
