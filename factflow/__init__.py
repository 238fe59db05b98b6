"""factflow: declarative message pipelines compiled into Bytewax dataflows.

The public API is what adapter authors need; everything else lives in the subpackages:
`compiler` (YAML -> plan), `dataflows` and `connectors` (the Bytewax runtime),
`adapters` (protocol, registry, built-ins), `storage`, `db` and `api`.
"""

from factflow.adapters.base import Adapter, Context
from factflow.exceptions import ConfigurationError, FactflowError, NonRetryableError
from factflow.messages import Message

__version__ = "0.1.0"

__all__ = [
    "Adapter",
    "ConfigurationError",
    "Context",
    "FactflowError",
    "Message",
    "NonRetryableError",
    "__version__",
]
