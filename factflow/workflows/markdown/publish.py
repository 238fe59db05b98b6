"""`segment_publisher`: one message per segment, with the document's provenance.

Each message's payload is the segment (`text`, `token_count`, `heading_path`, `index`)
plus `segment_count`, `url`, `title`, `document_id`; its metadata carries `url`, `title`,
`document_id` and `heading_path`, so lineage rows can be filtered by them.
"""

from __future__ import annotations

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import PayloadError

PROVENANCE = ("url", "title", "document_id", "language")


class SegmentPublisherConfig(WorkflowConfig):
    pass


class SegmentPublisherAdapter(WorkflowAdapter):
    name = "segment_publisher"
    config_model = SegmentPublisherConfig

    def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload if isinstance(message.payload, dict) else {}
        segments = payload.get("segments")
        if not isinstance(segments, list):
            msg = "payload has no 'segments' list (the output of smart_segmenter)"
            raise PayloadError(msg)
        front = payload.get("front_matter")
        front = front if isinstance(front, dict) else {}
        provenance: JsonDict = {
            k: front.get(k, payload.get(k)) for k in PROVENANCE if front.get(k, payload.get(k))
        }
        out: list[Message] = []
        for index, segment in enumerate(segments):
            if not isinstance(segment, dict) or not isinstance(segment.get("text"), str):
                msg = f"segment {index} has no 'text'"
                raise PayloadError(msg)
            body = {**segment, "segment_count": len(segments), **provenance}
            body.setdefault("index", index)
            metadata = {**provenance, "heading_path": list(segment.get("heading_path") or [])}
            out.append(message.derive(payload=body, metadata=metadata))
        return out
