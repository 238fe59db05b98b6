"""The typed config every workflow adapter takes: a pydantic model whose JSON Schema is the
adapter's `config_schema`, so the compiler checks the YAML against the same model the
adapter validates at construction (unknown fields E301, missing ones E302), and whatever
the schema cannot say (a regular expression that does not compile) is reported at compile
time too, as E303."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from factflow.adapters.base import Adapter
from factflow.types import ConfigProblem, JsonDict


class WorkflowConfig(BaseModel):
    """Base of the workflow adapters' configs: unknown fields are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkflowAdapter(Adapter):
    """An adapter whose config is `config_model`; subclasses set it, and `config_schema`
    follows from it."""

    config_model: ClassVar[type[WorkflowConfig]] = WorkflowConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.config_schema = cls.config_model.model_json_schema()

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        try:
            cls.config_model.model_validate(config)
        except ValidationError as exc:
            return [
                ConfigProblem(
                    path=tuple(error["loc"]),
                    code="E303",
                    message=error["msg"],
                    suggestion=f"see the `{cls.name}` adapter in docs/adapters.md",
                )
                for error in exc.errors()
            ]
        return []
