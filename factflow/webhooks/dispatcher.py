"""The dispatcher: claims due deliveries from Postgres and sends them, one per instance.

Any number of server instances run one each. Claims use SKIP LOCKED, so each attempt is
made by one instance; a claim is a lease, so a delivery whose instance died mid-attempt is
sent again once the lease runs out (at-least-once: receivers dedupe by
`X-Factflow-Delivery`). Attempts run on a thread pool with a cap per subscription, so a
slow or dead receiver holds at most `per_endpoint_concurrency` slots and never delays the
others. The loop wakes on `NOTIFY factflow_webhooks` (a delivery was queued), when the
next retry is due, or after `poll_seconds`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from factflow.db.connection import connect
from factflow.db.repositories import webhooks as repo
from factflow.webhooks.exceptions import UrlNotAllowedError
from factflow.webhooks.policy import is_retryable, parse_retry_after, retry_delay
from factflow.webhooks.settings import WebhookSettings
from factflow.webhooks.signing import encode_body, signed_headers
from factflow.webhooks.urls import check_url

_log = logging.getLogger(__name__)
# while attempts are in flight the loop looks for freed slots this often (bench/webhooks.py:
# 0.05 s left slots idle long enough to halve one instance's deliveries/s)
_BUSY_WAKE_SECONDS = 0.01
# the claim loop and the threads recording attempts (short transactions) share these
_DB_CONNECTIONS = 4


class Dispatcher:
    """Sends this instance's share of the webhook deliveries; see the module docstring.

    `start()` starts the loop thread; `close()` stops claiming and waits for the attempts
    in flight (each bounded by the timeout). Neither raises for a database that is down:
    the loop logs and retries.
    """

    def __init__(self, database_url: str, settings: WebhookSettings, *, instance: str) -> None:
        self.database_url = database_url
        self.settings = settings
        self.instance = instance
        self.outcomes: collections.Counter[str] = collections.Counter()
        self._inflight: collections.Counter[uuid.UUID] = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._http: httpx.Client | None = None
        self._pool: ConnectionPool[Any] | None = None

    @property
    def pool(self) -> ConnectionPool[Any]:
        assert self._pool is not None, "start() the dispatcher first"
        return self._pool

    def start(self) -> None:
        # a pool of its own, of a fixed size: the dispatcher never takes the connections
        # requests need, and a pool that never grows opens no connections mid-run
        self._pool = ConnectionPool(
            self.database_url,
            min_size=_DB_CONNECTIONS,
            max_size=_DB_CONNECTIONS,
            kwargs={"autocommit": True},
            name=f"factflow-webhooks-{self.instance}",
            open=False,
        )
        self._pool.open(wait=True, timeout=30)
        self._http = httpx.Client(
            timeout=self.settings.timeout_seconds,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=self.settings.concurrency),
        )
        self._executor = ThreadPoolExecutor(
            self.settings.concurrency, thread_name_prefix="factflow-webhook"
        )
        self._thread = threading.Thread(target=self._run, name="factflow-webhooks", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.poll_seconds + 5)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._http is not None:
            self._http.close()
        if self._pool is not None:
            self._pool.close()

    # --- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        listener: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = connect(self.database_url)
                    listener.execute(f"LISTEN {repo.WEBHOOKS_CHANNEL}")
                wait = self.dispatch_due()
                for _ in listener.notifies(timeout=wait, stop_after=1):
                    pass
            except Exception:
                _log.exception("webhook dispatcher: retrying after an error")
                if listener is not None:
                    with contextlib.suppress(Exception):
                        listener.close()
                listener = None
                self._stop.wait(self.settings.poll_seconds)
        if listener is not None:
            listener.close()

    def dispatch_due(self) -> float:
        """Claim what is due into the free slots and start the attempts; returns how long
        the loop may sleep before it should look again."""
        with self._lock:
            free = self.settings.concurrency - sum(self._inflight.values())
            busy = [
                s for s, n in self._inflight.items() if n >= self.settings.per_endpoint_concurrency
            ]
        claimed: list[repo.ClaimedDelivery] = []
        with self.pool.connection() as conn:
            if free > 0:
                claimed = repo.claim_deliveries(
                    conn,
                    instance=self.instance,
                    limit=free,
                    per_subscription=self.settings.per_endpoint_concurrency,
                    lease=self.settings.lease,
                    busy=busy,
                )
            due = None if len(claimed) == free else repo.next_due_in(conn)
        for delivery in claimed:
            with self._lock:
                self._inflight[delivery.subscription_id] += 1
            assert self._executor is not None
            self._executor.submit(self._attempt, delivery)
        if claimed and len(claimed) == free:
            return _BUSY_WAKE_SECONDS
        wait = self.settings.poll_seconds
        if due is not None:
            wait = min(wait, max(0.0, due.total_seconds()))
        with self._lock:
            if self._inflight:
                wait = min(wait, _BUSY_WAKE_SECONDS)
        return wait

    # --- one attempt --------------------------------------------------------------------

    def _attempt(self, delivery: repo.ClaimedDelivery) -> None:
        try:
            result = self.send(delivery)
            with self.pool.connection() as conn:
                if not repo.record_attempt(conn, delivery, result, instance=self.instance):
                    _log.warning(
                        "webhook delivery %s attempt %d outlived its lease; not recorded as"
                        " the delivery's state",
                        delivery.id,
                        delivery.attempt,
                    )
            with self._lock:
                self.outcomes[result.outcome] += 1
        except Exception:
            # the lease runs out and another claim retries it
            _log.exception("webhook delivery %s: attempt could not be recorded", delivery.id)
        finally:
            with self._lock:
                self._inflight[delivery.subscription_id] -= 1
                if self._inflight[delivery.subscription_id] <= 0:
                    del self._inflight[delivery.subscription_id]

    def send(self, delivery: repo.ClaimedDelivery) -> repo.AttemptResult:
        """Make one HTTP attempt and decide what follows; never raises."""
        started = datetime.now(UTC)
        clock = time.monotonic()
        try:
            check_url(delivery.url, allow_private=self.settings.allow_private_urls)
        except UrlNotAllowedError as exc:
            return repo.AttemptResult(started, 0.0, None, str(exc), None, "failed")
        body = encode_body(delivery.body)
        headers = signed_headers(
            delivery.secrets,
            delivery_id=str(delivery.id),
            event_type=delivery.event_type,
            timestamp=int(started.timestamp()),
            body=body,
        )
        assert self._http is not None
        status_code: int | None = None
        excerpt: str | None = None
        retry_after: timedelta | None = None
        error: str | None = None
        try:
            with self._http.stream("POST", delivery.url, content=body, headers=headers) as resp:
                status_code = resp.status_code
                excerpt = self._excerpt(resp)
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = (time.monotonic() - clock) * 1000
        if status_code is not None and 200 <= status_code < 300:
            return repo.AttemptResult(started, latency, status_code, None, excerpt, "delivered")
        if status_code is not None:
            error = f"HTTP {status_code}"
        if not is_retryable(status_code):
            return repo.AttemptResult(started, latency, status_code, error, excerpt, "failed")
        delay = retry_delay(self.settings, delivery.retry_index, retry_after)
        if delay is None:
            return repo.AttemptResult(
                started, latency, status_code, error, excerpt, "dead_lettered"
            )
        return repo.AttemptResult(
            started, latency, status_code, error, excerpt, "pending", retry_after=delay
        )

    def _excerpt(self, response: httpx.Response) -> str:
        cap = self.settings.response_excerpt_bytes
        data = b""
        for chunk in response.iter_raw():
            data += chunk
            if len(data) >= cap:
                break
        return data[:cap].decode("utf-8", errors="replace")
