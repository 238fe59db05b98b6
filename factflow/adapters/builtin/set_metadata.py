"""`set_metadata`: merges fixed `values` into each message's metadata."""

from factflow.adapters.base import Adapter, Context
from factflow.messages import Message


class SetMetadataAdapter(Adapter):
    name = "set_metadata"
    config_schema = {
        "type": "object",
        "properties": {"values": {"type": "object"}},
        "required": ["values"],
        "additionalProperties": False,
    }

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message.with_changes(metadata={**message.metadata, **self.config["values"]})]
