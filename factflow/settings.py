"""Settings from the environment (`FACTFLOW_*`), read once per process.

Tests and the server build their own `Settings(...)` and pass it in explicitly.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACTFLOW_", extra="ignore")

    pipeline: Path | None = Field(default=None, description="pipeline YAML for factflow.flow")
    plan: Path | None = Field(
        default=None, description="compiled plan.json a launcher wrote (wins over pipeline)"
    )
    execution_id: str | None = Field(
        default=None, description="execution id; the same id resumes a run"
    )
    storage_uri: str | None = Field(
        default=None, description="stage storage when the pipeline names none"
    )
    store_stages: bool = Field(default=True, description="write every stage's output")
    recovery_dir: Path = Field(default=Path("./output/recovery"))
    progress_dir: Path | None = Field(
        default=None, description="folder where each worker process writes its counters"
    )
    drain_dir: Path | None = Field(
        default=None, description="folder the execution's processes share drain counters in"
    )
    processes: int = Field(default=1, ge=1, description="worker processes of the execution")
    source_partitions: int = Field(
        default=1, ge=1, description="partitions per file/memory queue: workers x processes"
    )
    inputs: dict[str, str] = Field(
        default_factory=dict, description='JSON {"queue": "file.jsonl"}: files read as queues'
    )
    database_url: str | None = None
    llm_model: str | None = Field(
        default=None, description="litellm model of Context.llm, e.g. openai/gpt-4o-mini"
    )
    embedding_model: str | None = Field(
        default=None, description="litellm model of Context.embeddings"
    )
    llm_api_base: str | None = Field(
        default=None, description="OpenAI-compatible base URL (self-hosted models, proxies)"
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key; without it litellm reads the provider's own variable"
    )
