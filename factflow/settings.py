"""The one settings model: every `FACTFLOW_*` variable, read once per process.

Workers, the CLI and the server read it; tests and embedders build their own
`Settings(...)` and pass it in explicitly (`create_app(Settings(...))`). The database and
the supervisor get plain views of it (`DatabaseSettings.of`, `SupervisorSettings.of`), so
nothing below reads the environment behind the caller's back. Outside development the
unsafe defaults (no database, relative data paths) are refused at construction; a missing
auth secret is refused by the server (`AuthSettings.of`), which alone needs it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import types
import typing
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from factflow.outage import DEFAULT_LIMIT_SECONDS as DEFAULT_OUTAGE_LIMIT_SECONDS

_REPO_PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
# the seed system's webhook retries: 1 min, 5 min, 30 min, 2 h, 12 h; dead after the sixth
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0, 43200.0)
Role = Literal["admin", "member", "viewer"]  # factflow.auth.Role's values


def _instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACTFLOW_", extra="ignore")

    # --- everyone ------------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = Field(
        default="development",
        description="development, test or production (production refuses unsafe defaults)",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="json: one JSON object a line, with execution, route and process ids",
    )
    database_url: str | None = Field(
        default=None, description="Postgres URL (postgresql://...); the server and workers share it"
    )
    storage_uri: str = Field(
        default="file://./output/storage",
        description="stage storage (the storage API reads it; workers use it when the "
        "pipeline names none)",
    )
    recovery_dir: Path = Field(
        default=Path("./output/recovery"),
        description="local Bytewax recovery directories, one folder per execution",
    )

    # --- database ------------------------------------------------------------------------
    pool_min_size: int = Field(
        default=1, ge=0, description="connections the server's pool keeps open"
    )
    pool_max_size: int = Field(
        default=10, ge=2, description="connections the server's pool may open"
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="how long to wait for a database connection"
    )

    # --- workers (set by the launcher) ---------------------------------------------------
    pipeline: Path | None = Field(default=None, description="pipeline YAML for factflow.flow")
    plan: Path | None = Field(
        default=None, description="compiled plan.json a launcher wrote (wins over pipeline)"
    )
    execution_id: str | None = Field(
        default=None, description="execution id; the same id resumes a run"
    )
    store_stages: bool = Field(default=True, description="write every stage's output")
    progress_dir: Path | None = Field(
        default=None, description="folder where each worker process writes its counters"
    )
    drain_dir: Path | None = Field(
        default=None, description="folder the execution's processes share drain counters in"
    )
    launch_id: str | None = Field(
        default=None,
        description="one start of an execution's processes; with a database they share "
        "their drain and progress counters in Postgres under it (any host)",
    )
    processes: int = Field(default=1, ge=1, description="worker processes of the execution")
    outage_limit_seconds: float = Field(
        default=DEFAULT_OUTAGE_LIMIT_SECONDS,
        gt=0,
        description="how long workers wait for a broker or Postgres that went away (sources "
        "and sinks pause meanwhile) before the run fails, resumable (docs/operations.md)",
    )
    source_partitions: int = Field(
        default=1, ge=1, description="partitions per file/memory queue: workers x processes"
    )
    inputs: dict[str, str] = Field(
        default_factory=dict, description='JSON {"queue": "file.jsonl"}: files read as queues'
    )
    entries: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"route": "file.jsonl"}: messages entering a route part-way (a '
        "restart from lineage and storage)",
    )
    llm_model: str | None = Field(
        default=None, description="litellm model of Context.llm, e.g. openai/gpt-4o-mini"
    )
    embedding_model: str | None = Field(
        default=None, description="litellm model of Context.embeddings"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="workers serve Prometheus metrics on this port plus their process id",
    )
    llm_api_base: str | None = Field(
        default=None, description="OpenAI-compatible base URL (self-hosted models, proxies)"
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key; without it litellm reads the provider's own variable"
    )

    # --- the server ----------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path("output/server"),
        description="per-execution run folders (plan, inputs, queues, logs)",
    )
    pipelines_dir: Path | None = Field(
        default=None, description="shipped pipelines served as templates (default ./pipelines)"
    )
    max_concurrent_executions: int = Field(
        default=8, ge=1, description="running executions allowed across all server replicas"
    )
    cancel_grace_seconds: float = Field(
        default=10.0, ge=0, description="after SIGTERM, how long workers may drain before SIGKILL"
    )
    heartbeat_seconds: float = Field(
        default=2.0,
        gt=0,
        description="how often a server beats the heartbeat of the executions it runs",
    )
    stale_after_seconds: float = Field(
        default=30.0, gt=0, description="a running execution without heartbeat is interrupted"
    )
    restart_window_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a resume without recovery snapshot re-enters the stored outputs of the "
        "last this many seconds that no later step took (longer than the longest epoch)",
    )
    default_queue_provider: str | None = Field(
        default=None, description="queue provider for pipelines without a `queue:` section"
    )
    worker_env: dict[str, str] = Field(
        default_factory=dict, description="extra environment for worker processes"
    )
    worker_restarts: int = Field(
        default=2,
        ge=0,
        description="times an execution's processes are restarted from recovery after one "
        "of them is killed by a signal (then it fails)",
    )
    resume_abandoned: bool = Field(
        default=False,
        description="resume (not only interrupt) executions whose server is gone",
    )
    worker_agents: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: spread an execution's processes over the live worker agents "
        "(`factflow worker serve`), on this host when there are none; off: this host only",
    )
    worker_forkserver: bool = Field(
        default=True,
        description="fork worker processes from a warm process that has Bytewax and factflow "
        "imported (`python -m factflow.dataflows.forkserver`, started by the server and by "
        "`factflow worker serve`) instead of starting an interpreter per process; they "
        "start with a plain `python -m bytewax.run` while it is unavailable",
    )
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="added to the niceness of the worker processes the server and "
        "`factflow worker serve` start: when executions keep every core busy, the API and "
        "Postgres (which the workers wait on) still get the CPU first; 0 for the same "
        "priority as the server",
    )
    validate_pipelines_on_start: bool = Field(
        default=True, description="compile the shipped pipelines when the server starts"
    )
    instance_id: str = Field(
        default_factory=_instance_id,
        description="this server instance's id in executions and health (default host:pid)",
    )

    # --- worker agent (`factflow worker serve`) --------------------------------------------
    agent_id: str = Field(
        default_factory=socket.gethostname,
        description="this worker agent's id in Postgres (default the host name; one agent "
        "per id, kept across restarts of the agent)",
    )
    agent_address: str = Field(
        default="127.0.0.1",
        description="address the agent's Bytewax processes listen on, reachable from the "
        "other agents' hosts (-a)",
    )
    agent_first_port: int = Field(
        default=9100, gt=0, le=65535, description="first port of the agent's processes"
    )
    agent_capacity: int = Field(
        default=4,
        ge=1,
        description="Bytewax processes the agent runs at once (ports first_port onwards)",
    )
    agent_dir: Path = Field(
        default=Path("output/agent"),
        description="the agent's run folders and recovery directories",
    )

    # --- chat (the server) ---------------------------------------------------------------
    chat_model: str | None = Field(
        default=None,
        description="litellm model of chat answers (default: FACTFLOW_LLM_MODEL); with "
        "neither, answers are extractive (the best sentences of the sources, offline)",
    )
    chat_context_tokens: int = Field(
        default=6000, ge=256, description="token budget of the sources in an answer's prompt"
    )

    # --- webhooks and schedules (the server) ---------------------------------------------
    webhook_retry_schedule_seconds: tuple[float, ...] = Field(
        default=DEFAULT_RETRY_SCHEDULE,
        description="waits before webhook attempts 2..n (JSON list); dead-lettered after n",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="timeout of one webhook delivery attempt"
    )
    webhook_allow_private_urls: bool = Field(
        default=False,
        description="allow webhooks to loopback/private addresses (`serve --embedded`: on)",
    )
    webhook_concurrency: int = Field(
        default=32, ge=1, description="webhook deliveries in flight per server"
    )
    webhook_per_endpoint_concurrency: int = Field(
        default=4, ge=1, description="webhook deliveries in flight per endpoint"
    )
    schedule_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often the scheduler looks for due cron schedules"
    )
    schedule_misfire_grace_seconds: float = Field(
        default=60.0, ge=0, description="a schedule tick found later than this is missed"
    )

    # --- access control (factflow/auth: AuthSettings.of refuses a missing secret outside
    # development; workers never need it) ------------------------------------------------
    auth_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="server secret keying the API key hashes; required outside development"
        " (without it development runs open)",
    )
    auth_trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list,
        description="addresses (CIDR) whose SSO headers are trusted; empty: SSO trust off",
    )
    auth_sso_user_header: str = Field(
        default="X-Forwarded-User",
        description="header with the SSO user name (trusted proxies only)",
    )
    auth_sso_email_header: str = Field(
        default="X-Forwarded-Email",
        description="header with the SSO user's email (trusted proxies only)",
    )
    auth_sso_groups_header: str = Field(
        default="X-Forwarded-Groups",
        description="header with the SSO user's groups, comma-separated",
    )
    auth_sso_group_roles: dict[str, Role] = Field(
        default_factory=dict, description='SSO group -> role, e.g. {"ff-admins": "admin"}'
    )
    auth_sso_default_role: Role | None = Field(
        default=None, description="role of an SSO user whose groups map to none (none: 403)"
    )
    auth_session_ttl_seconds: float = Field(
        default=8 * 3600, gt=0, description="a login's session cookie lasts this long"
    )
    auth_cookie_secure: bool | None = Field(
        default=None,
        description="mark the session cookies Secure (HTTPS only); default: in production",
    )
    auth_login_max_failures: int = Field(
        default=5, ge=1, description="failed logins in a row that lock the address out"
    )
    auth_login_lockout_seconds: float = Field(
        default=900, gt=0, description="how long a lockout lasts (and failures are counted)"
    )
    auth_login_rate_per_minute: int = Field(
        default=30, ge=1, description="login attempts per minute from one client address"
    )
    auth_rate_limit_per_minute: int | None = Field(
        default=600,
        ge=1,
        description="requests per minute per key (or user); a key may set its own; none: off",
    )
    auth_key_max_running_executions: int | None = Field(
        default=None,
        ge=1,
        description="executions one key may have running at once (a key may set its own);"
        " none: only max_concurrent_executions",
    )

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Self:
        if self.environment == "production":
            if not self.database_url:
                msg = "FACTFLOW_DATABASE_URL must be set when FACTFLOW_ENVIRONMENT=production"
                raise ValueError(msg)
            if not self.data_dir.is_absolute():
                msg = "FACTFLOW_DATA_DIR must be an absolute path in production"
                raise ValueError(msg)
        return self

    def templates_dir(self) -> Path:
        if self.pipelines_dir is not None:
            return self.pipelines_dir
        local = Path("pipelines")
        return local if local.is_dir() else _REPO_PIPELINES

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


def _shown_type(annotation: object) -> str:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_shown_type(arg) for arg in args)
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not args:
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("ipaddress.", "")


def _shown_default(name: str) -> str:
    field = Settings.model_fields[name]
    if name == "instance_id":
        return "`<hostname>:<pid>`"
    if name == "agent_id":
        return "`<hostname>`"
    value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        import json

        return f"`{json.dumps(value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


# Variables read where they are used, not through the model (each module's doc has more)
OTHER_VARIABLES: dict[str, str] = {
    "FACTFLOW_CONFIG_VALIDATOR_STRICT": "0: validation errors a pipeline can run with become "
    "warnings (the compiler)",
    "FACTFLOW_SERVER_URL": "the server the CLI's client commands talk to",
    "FACTFLOW_API_KEY": "the API key the CLI's client commands send",
    "FACTFLOW_PG_DATA": "the embedded Postgres's data folder (`serve --embedded`, `db embedded`)",
    "FACTFLOW_RABBITMQ_URL": "the `rabbitmq` provider's URL when a pipeline names none",
    "FACTFLOW_STOMP_URL": "the `stomp` provider's URL when a pipeline names none",
    "FACTFLOW_KAFKA_BOOTSTRAP": "the `kafka` provider's brokers when a pipeline names none",
    "FACTFLOW_PULSAR_URL": "the `pulsar` provider's URL when a pipeline names none",
    "FACTFLOW_S3_ENDPOINT": "S3/MinIO endpoint of `s3://` and `minio://` storage",
    "FACTFLOW_S3_ACCESS_KEY": "S3/MinIO access key",
    "FACTFLOW_S3_SECRET_KEY": "S3/MinIO secret key",
    "FACTFLOW_S3_SECURE": "S3/MinIO over TLS (default: false for loopback, else true)",
    "FACTFLOW_S3_REGION": "S3 region (default: asked from the server)",
    "FACTFLOW_CHROMIUM": "the Chromium `web_crawler` starts (default: the system's)",
}


def reference_page() -> str:
    """docs/settings.md: every setting of the model, generated (`python
    scripts/settings_doc.py > docs/settings.md`; a test checks the file is current)."""
    lines = [
        "# Settings",
        "",
        "Every `FACTFLOW_*` variable of the one settings model (`factflow/settings.py`), read",
        "by the server, the CLI and the worker processes. Generated by",
        "`python scripts/settings_doc.py > docs/settings.md`; a test checks this page is current.",
        'Lists and maps are JSON (`FACTFLOW_WORKER_ENV=\'{"A": "1"}\'`), booleans `true`/`false`.',
        "",
        "| variable | type | default | what it does |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        shown = _shown_type(field.annotation).replace("|", "\\|")
        lines.append(
            f"| `FACTFLOW_{name.upper()}` | {shown} | {_shown_default(name)} | {description} |"
        )
    lines += [
        "",
        "## Read outside the settings model",
        "",
        "| variable | what it does |",
        "|---|---|",
        *(f"| `{name}` | {text} |" for name, text in OTHER_VARIABLES.items()),
    ]
    return "\n".join(lines) + "\n"
