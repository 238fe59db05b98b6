"""The runtime: a plan becomes a Bytewax dataflow.

`build` wires sources, routes, edges and sinks; `invoke` runs one adapter over a batch
(gates, retries, circuit breaker, adaptive concurrency, stage storage); `stateful` keeps
per-key adapter state in Bytewax recovery; `loop` is the per-worker asyncio loop;
`progress` counts messages for `factflow run`; `wrapped_source` is the base of the source
wrappers (pausing, epoch timing, lag sampling).
"""
