"""`passthrough`: emits its input unchanged (the identity route)."""

from factflow.adapters.base import Adapter, Context
from factflow.messages import Message


class PassthroughAdapter(Adapter):
    name = "passthrough"

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message]
