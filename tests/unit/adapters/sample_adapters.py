"""Adapter classes for the registry tests, imported by dotted path (`module:Class`)."""

from __future__ import annotations

from typing import Any

from factflow import Adapter, Context, Message


class GoodAdapter(Adapter):
    """A valid adapter with a required config field."""

    name = "good"
    config_schema = {
        "type": "object",
        "properties": {"greeting": {"type": "string"}},
        "required": ["greeting"],
        "additionalProperties": False,
    }

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message.derive(payload={"greeting": self.config["greeting"]})]


class StatefulAdapter(Adapter):
    name = "counter"
    stateful = True

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message]


class NamelessAdapter(Adapter):
    """Forgot `name`."""

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message]


class BlankNameAdapter(NamelessAdapter):
    name = "  "


class BadSchemaAdapter(Adapter):
    name = "bad_schema"
    config_schema = {"type": "no-such-type"}

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message]


class ListSchemaAdapter(Adapter):
    name = "list_schema"
    config_schema = ["not", "a", "dict"]  # type: ignore[assignment]

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message]


class NotAnAdapter:
    name = "impostor"


def shout(payload: Any) -> Any:
    """A `map` function: upper-cases the payload's text."""
    return {**payload, "text": str(payload["text"]).upper()}


NOT_CALLABLE = 42
