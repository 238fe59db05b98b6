"""`file`: one JSON-lines file per queue in a folder (`queue.path`)."""

from factflow.providers.spec import ProviderSpec

PROVIDER = ProviderSpec(
    name="file",
    connector="factflow.connectors.file",
    table_dead_letters=True,
    summary="JSON-lines files in a folder",
    finite=True,
)


def queue_file_name(queue: str) -> str:
    """The file of a queue: `/` becomes `_`, plus `.jsonl`."""
    return queue.replace("/", "_") + ".jsonl"
