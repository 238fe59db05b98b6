"""`postgres`: a table queue in the factflow database (SKIP LOCKED claims)."""

from factflow.providers.spec import ProviderSpec

PROVIDER = ProviderSpec(
    name="postgres",
    connector="factflow.connectors.postgres",
    table_dead_letters=True,
    summary="a table queue in Postgres",
)
