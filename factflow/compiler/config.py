"""Pydantic models of the pipeline YAML (format `version: "1.0"` plus factflow's keys).

Unknown keys are rejected everywhere (E101). Cross-field and cross-route rules live in
`validate`, so that every problem is reported at once with its position.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from factflow.conditions import ConditionConfig
from factflow.types import JsonDict

ROUTE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
PIPELINE_NAME_PATTERN = r"^[a-z0-9_-]+$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorHandlingConfig(StrictModel):
    max_retries: int | None = Field(default=None, ge=0, le=100)
    retry_delay_seconds: float | None = Field(default=None, ge=0)
    dead_letter_queue: str | None = None
    backoff: Literal["fixed", "exponential"] | None = None
    max_retry_delay_seconds: float | None = Field(default=None, ge=0)
    circuit_breaker_threshold: int | None = Field(default=None, ge=1)
    circuit_breaker_reset_seconds: float | None = Field(default=None, gt=0)


class BackpressureConfig(StrictModel):
    target_latency_ms: float | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    min_concurrency: int | None = Field(default=None, ge=1)


class InboundConfig(StrictModel):
    queue: str
    subscription: str | None = None
    concurrency: int = Field(default=1, ge=1)
    prefetch: int | None = Field(default=None, ge=1)
    external: bool = False
    format: Literal["envelope", "raw"] = "envelope"
    scope: Literal["execution", "global"] | None = None
    """factflow: overrides whether the queue is scoped to the execution (see factflow/providers)."""


class SinkConfig(StrictModel):
    """factflow: a writer (search index, object store, ...) instead of a queue."""

    type: str
    config: JsonDict = Field(default_factory=dict)

    @field_validator("config", mode="before")
    @classmethod
    def _null_config_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class OutboundConfig(StrictModel):
    """One destination of a route's results: a `queue`, or (factflow) a `sink` writer."""

    queue: str | None = None
    sink: SinkConfig | None = None
    condition: ConditionConfig | None = None
    format: Literal["envelope", "raw"] = "envelope"
    scope: Literal["execution", "global"] | None = None

    @model_validator(mode="after")
    def _queue_or_sink(self) -> OutboundConfig:
        if (self.queue is None) == (self.sink is None):
            msg = "an outbound names either a `queue` or a `sink: {type: ...}`, not both or none"
            raise ValueError(msg)
        return self


class AdapterConfig(StrictModel):
    type: str
    config: JsonDict = Field(default_factory=dict)
    condition: ConditionConfig | None = None
    store: bool | None = None
    name: str | None = None

    @field_validator("config", mode="before")
    @classmethod
    def _null_config_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class RouteConfig(StrictModel):
    name: str | None = None
    description: str | None = None
    inbound: InboundConfig
    adapters: list[AdapterConfig] = Field(default_factory=list)
    outbound: list[OutboundConfig] = Field(default_factory=list)
    key: str | None = None
    loop: bool = False
    store: bool | None = None
    error_handling: ErrorHandlingConfig | None = None
    backpressure: BackpressureConfig | None = None

    @property
    def queue_outbounds(self) -> list[tuple[int, str]]:
        """(index, queue) of the outbounds that name a queue."""
        return [(i, o.queue) for i, o in enumerate(self.outbound) if o.queue is not None]

    @field_validator("outbound", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, (dict, str)):
            value = [value]
        if isinstance(value, list):
            return [{"queue": item} if isinstance(item, str) else item for item in value]
        return value


class QueueConfig(StrictModel):
    provider: str
    url: str | None = None
    path: str | None = None
    options: JsonDict = Field(default_factory=dict)
    format: Literal["envelope", "raw"] = "envelope"


class StorageConfig(StrictModel):
    uri: str
    options: JsonDict = Field(default_factory=dict)


class InitMessageConfig(StrictModel):
    route: str
    payload: JsonDict = Field(default_factory=dict)
    metadata: JsonDict = Field(default_factory=dict)


class RateLimitConfig(StrictModel):
    """factflow: at most `limit` executions started by the trigger per `period_seconds`
    (per value of `key` in the event's data, when given); events beyond it start none."""

    limit: int = Field(ge=1, le=1_000_000)
    period_seconds: float = Field(gt=0, le=31 * 86400)
    key: str | None = None


class DebounceConfig(StrictModel):
    """factflow: a burst of events (with the same `key` value) starts one execution, with
    the burst's last event, once `period_seconds` pass without another; `timeout_seconds`
    bounds how long a burst that never pauses is held back."""

    period_seconds: float = Field(gt=0, le=86400)
    key: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)


TRIGGER_EVENT_KEYS = ("event", "condition", "input_queue", "init_payload", "rate_limit", "debounce")
TRIGGER_SCHEDULE_KEYS = ("cron", "timezone", "missed")


class TriggerConfig(StrictModel):
    """factflow: one entry of `triggers:`, an event trigger (`event:`, a glob over event
    names) or a schedule (`cron:`); which keys fit which kind is checked by `validate`
    (E117), so every problem is reported with its position."""

    event: str | None = Field(default=None, min_length=1)
    condition: ConditionConfig | None = None
    input_queue: str | None = None
    """Send the event's data as one message to this queue (a route's inbound queue)."""
    init_payload: bool = False
    """Merge the event's data into the `init_message` payload."""
    rate_limit: RateLimitConfig | None = None
    debounce: DebounceConfig | None = None
    cron: str | None = None
    timezone: str = "UTC"
    missed: Literal["skip", "run_once"] = "skip"
    max_running: int | None = Field(default=None, ge=1, le=10_000)
    """Refuse to start beyond this many running executions of the config."""

    @property
    def kind(self) -> Literal["event", "schedule"]:
        return "schedule" if self.cron is not None else "event"


class PipelineConfig(StrictModel):
    """The root of a pipeline YAML."""

    version: Literal["1.0"]
    name: str | None = None
    description: str | None = None
    queue: QueueConfig | None = None
    storage: StorageConfig | None = None
    error_handling: ErrorHandlingConfig | None = None
    backpressure: BackpressureConfig | None = None
    idle_timeout_seconds: float | None = Field(default=None, gt=0)
    routes: dict[str, RouteConfig] = Field(min_length=1)
    init_message: InitMessageConfig | None = None
    triggers: list[TriggerConfig] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _numeric_version(cls, value: Any) -> Any:
        # `version: 1.0` unquoted is a float in YAML; the seed system accepted it.
        return "1.0" if value == 1.0 and not isinstance(value, bool) else value
