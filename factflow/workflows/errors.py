"""Errors the workflow adapters raise; the route's error handling retries them and then
dead-letters the message with the error's text as the reason. A `NonRetryableError`
(`PageRejectedError`) is dead-lettered at once."""

from __future__ import annotations

from factflow.exceptions import FactflowError, NonRetryableError


class WorkflowError(FactflowError):
    """Base of the workflow adapters' errors."""


class FetchError(WorkflowError):
    """A URL could not be fetched (network error, timeout, 5xx, 429): worth retrying."""


class PageRejectedError(WorkflowError, NonRetryableError):
    """A page is not content to ingest (robots.txt, status, content type, size).

    Raised only with `on_reject: dead_letter`; non-retryable, so the route dead-letters
    the message at once (reason `non_retryable`) instead of fetching the page again.
    `reason` is the short machine name (`robots`, `status_404`, `content_type`,
    `too_large`, `redirect`), which the dead letter's error text carries.
    """

    def __init__(self, url: str, reason: str, detail: str) -> None:
        self.url, self.reason, self.detail = url, reason, detail
        super().__init__(f"{url} rejected ({reason}): {detail}")


class StorageRequiredError(WorkflowError):
    """The adapter reads or writes stage storage but the run has none.

    Give the pipeline `storage: {uri: ...}` or set FACTFLOW_STORAGE_URI (and do not set
    FACTFLOW_STORE_STAGES=0).
    """


class FileSourceError(WorkflowError, NonRetryableError):
    """`file_source` cannot scan what it was given: the folder does not exist, is not a
    folder, or the message names no path. Non-retryable: fix the path (relative paths are
    relative to the run's working directory) and start the scan again."""


class DocumentError(WorkflowError, NonRetryableError):
    """A document cannot be converted however often it is tried: the file is missing, is
    not a readable PDF, or is encrypted with a password factflow does not have."""


class PayloadError(WorkflowError, NonRetryableError, ValueError):
    """A message lacks what the adapter reads (`html`, `markdown`, `url`, ...): it comes
    from the wrong adapter or producer. Non-retryable, so it is dead-lettered at once
    (reason `non_retryable`) and does not count against the adapter's circuit breaker;
    fix the chain or the producer and redrive it. A `ValueError`, as before."""
