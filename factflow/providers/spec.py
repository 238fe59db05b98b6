"""`ProviderSpec`: one queue provider as the compiler, the launchers and the runtime see it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from factflow.extras import Extra

ScopedName = Callable[[str, str], str]
"""(queue, execution id) -> the queue's name for one execution."""


def seed_scoped_name(queue: str, execution_id: str) -> str:
    """The seed system's form `exec:<id>:<name>`."""
    return f"exec:{execution_id}:{queue}"


@dataclass(frozen=True, slots=True)
class QueueRule:
    """The provider's legal queue names, and how to say so to a user."""

    pattern: re.Pattern[str]
    explanation: str


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A queue provider. `connector` is the module of its engine side, which defines
    `make_source(spec, settings)` and `make_sink(queue, settings, *, raw)` and, where the
    broker allows it, `delete_queues(url, names) -> deleted names`."""

    name: str
    connector: str
    summary: str
    extra: Extra | None = None
    """The optional extra that installs the client; None for a core provider."""
    rule: QueueRule | None = None
    dead_letter: str = "{route}.dlq"
    """The default dead-letter queue of a route, `{route}` being its id."""
    scoped: ScopedName = seed_scoped_name
    topic_prefix: str | None = None
    """Queues under this prefix are broadcast topics: never scoped to an execution."""
    finite: bool = False
    """True when a source reads to the end of its input (memory, file): such runs end by
    themselves and cannot carry a loop; a broker's never end, so a run drains instead."""
    table_dead_letters: bool = False
    """True when a run with a database keeps the dead letters in its `dead_letters` table
    (file, postgres) rather than in the provider's dead-letter queues."""
    log: bool = False
    """True when reading does not remove a message (Kafka): a dead-letter queue can be
    listed and peeked, not redriven or purged."""

    @property
    def broker_dead_letters(self) -> bool:
        """Whether dead letters live in a queue on an outside broker."""
        return not (self.finite or self.table_dead_letters)

    def queue_name_problem(self, name: str) -> str | None:
        """Why `name` is not a valid queue here, or None when it is."""
        if self.rule is None or self.rule.pattern.match(name):
            return None
        return self.rule.explanation

    def dead_letter_queue(self, route_id: str) -> str:
        return self.dead_letter.format(route=route_id)

    def is_topic(self, queue: str) -> bool:
        return self.topic_prefix is not None and queue.startswith(self.topic_prefix)

    def scoped_queue(self, queue: str, execution_id: str) -> str:
        """`queue` of one execution, in a form legal on this provider."""
        return self.scoped(queue, execution_id)
