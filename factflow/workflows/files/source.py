"""`file_source`: a folder (or a glob, or one file) of local documents -> one message per file.

A message `{"path": "docs"}` (or the config's `path`) starts a scan. Each file with a known
extension becomes one message with its path, URL, format, size, mtime and content hash;
text formats carry their content the way the next adapter reads it (`markdown` and
`front_matter` for markdown and plain text, `html` for HTML), a PDF carries only its path
(`pdf_to_markdown` reads it). Files are emitted in path order, so a replayed scan emits
the same message ids.

With stage storage, every scan leaves a manifest (`state.py`), and a later execution
skips the files whose content has not changed since (same size and mtime, or the same
content hash): a rerun over an edited folder converts only what was edited or added.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import quote

import yaml
from pydantic import Field, field_validator

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import FileSourceError
from factflow.workflows.files.state import FileFacts, Manifest, ScanState, state_id
from factflow.workflows.markdown.convert import document_id_for

Format = Literal["markdown", "text", "html", "pdf"]
FORMATS: dict[str, Format] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
}
CONTENT_TYPES: dict[Format, str] = {
    "markdown": "text/markdown",
    "text": "text/plain",
    "html": "text/html",
    "pdf": "application/pdf",
}
_GLOB_CHARS = frozenset("*?[")


class FileSourceConfig(WorkflowConfig):
    path: str | None = Field(
        default=None,
        description="Folder, file or glob to scan when the message names none "
        "(relative to the run's working directory).",
    )
    path_field: str = Field(default="path", description="Payload field with the path.")
    pattern: str = Field(default="**/*", description="Glob of files within the folder.")
    extensions: list[str] = Field(
        default_factory=lambda: list(FORMATS), description="File extensions to read."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Globs of relative paths to leave out."
    )
    include_hidden: bool = Field(default=False, description="Also read dot files and folders.")
    max_files: int = Field(default=10_000, ge=1, description="Files emitted at most per scan.")
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="Larger files are skipped.")
    skip_unchanged: bool = Field(
        default=True, description="Skip files unchanged since an earlier execution's scan."
    )
    state_name: str | None = Field(
        default=None, description="Name of the skip state (default: route, folder, pattern)."
    )
    base_url: str | None = Field(
        default=None,
        description="Documents' URL prefix (base_url + relative path) instead of file://.",
    )

    @field_validator("extensions")
    @classmethod
    def _known_extensions(cls, value: list[str]) -> list[str]:
        normalized = [e.lower() if e.startswith(".") else f".{e.lower()}" for e in value]
        unknown = [e for e in normalized if e not in FORMATS]
        if unknown:
            msg = f"unknown extensions {unknown}; file_source reads {sorted(FORMATS)}"
            raise ValueError(msg)
        return normalized


@dataclass(frozen=True, slots=True)
class Scan:
    """Where to look: the folder and the glob within it (a single file is its own glob)."""

    root: Path
    pattern: str


def resolve_scan(path: str, pattern: str) -> Scan:
    """The folder and glob a path names; `FileSourceError` when the folder is missing."""
    given = Path(path).expanduser()
    parts = given.parts
    split = next((i for i, part in enumerate(parts) if _GLOB_CHARS & set(part)), None)
    if split is not None:  # a glob: the folder is what precedes its first wildcard
        root = Path(*parts[:split]) if split else Path()
        pattern = str(PurePosixPath(*parts[split:]))
    else:
        root = given
    root = root.absolute()
    if split is None and root.is_file():
        return Scan(root.parent, glob.escape(root.name))
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        msg = (
            f"file_source: {path!r} {what} (resolved to {root}; relative paths are "
            f"relative to the working directory {Path.cwd()})"
        )
        raise FileSourceError(msg)
    return Scan(root, pattern)


def _front_matter(text: str) -> tuple[str, JsonDict]:
    """A markdown file's YAML front matter (between leading `---` lines) and the rest."""
    if not text.startswith("---\n"):
        return text, {}
    end = text.find("\n---", 4)
    if end < 0:
        return text, {}
    try:
        loaded = yaml.safe_load(text[4:end])
    except yaml.YAMLError:
        return text, {}
    if not isinstance(loaded, dict):
        return text, {}
    rest = text[end + 4 :].lstrip("-").lstrip("\n")
    return rest, {str(k): v for k, v in loaded.items()}


def _first_heading(markdown: str) -> str | None:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip() or None
    return None


class FileSourceAdapter(WorkflowAdapter):
    """`{"path": FOLDER | GLOB | FILE}` -> one message per file (see the module docstring)."""

    name = "file_source"
    config_model = FileSourceConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = FileSourceConfig.model_validate(self.config)

    def process(self, message: Message, context: Context) -> list[Message]:
        s = self.settings
        payload = message.payload if isinstance(message.payload, dict) else {}
        path = payload.get(s.path_field, s.path)
        if not isinstance(path, str) or not path:
            msg = (
                f"file_source: the message has no '{s.path_field}' (a folder, file or glob) "
                "and the adapter's config names no `path`"
            )
            raise FileSourceError(msg)
        scan = resolve_scan(path, s.pattern)
        files = self._files(scan, context)
        state = None
        if s.skip_unchanged and context.storage is not None:
            sid = state_id(context.route_id, str(scan.root), scan.pattern, s.state_name)
            state = ScanState(context.storage, sid, context.execution_id)
        baseline = state.baseline() if state is not None else {}
        seen: Manifest = {}
        out: list[Message] = []
        for relative, file in files:
            if len(out) >= s.max_files:
                context.metrics.add("file_source.over_max_files", 1)
                continue
            emitted = self._read(message, relative, file, baseline, seen, context)
            if emitted is not None:
                out.append(emitted)
        if state is not None:
            state.save(str(scan.root), seen)
        if not files:
            context.logger.warning("file_source: no files match %s in %s", scan.pattern, scan.root)
        return out

    def _files(self, scan: Scan, context: Context) -> list[tuple[str, Path]]:
        """The scan's readable files by relative path, in path order."""
        s = self.settings
        found: list[tuple[str, Path]] = []
        for file in scan.root.glob(scan.pattern):
            relative = file.relative_to(scan.root).as_posix()
            if not s.include_hidden and any(p.startswith(".") for p in relative.split("/")):
                continue
            if any(fnmatch.fnmatch(relative, pattern) for pattern in s.exclude):
                continue
            if file.suffix.lower() not in s.extensions or not file.is_file():
                continue
            found.append((relative, file))
        found.sort()
        context.metrics.add("file_source.files", len(found))
        return found

    def _read(
        self,
        message: Message,
        relative: str,
        file: Path,
        baseline: Manifest,
        seen: Manifest,
        context: Context,
    ) -> Message | None:
        """The file's message, or None when it is skipped (unchanged, too large, unreadable)."""
        s = self.settings
        try:
            stat = file.stat()
            if stat.st_size > s.max_bytes:
                context.metrics.add("file_source.rejected.too_large", 1)
                context.logger.info("file_source: skipped %s: over max_bytes", file)
                return None
            before = baseline.get(relative)
            if before and (before.size, before.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                seen[relative] = before
                context.metrics.add("file_source.unchanged", 1)
                return None
            data = file.read_bytes()
        except OSError as exc:
            context.metrics.add("file_source.errors", 1)
            context.logger.warning("file_source: cannot read %s: %s", file, exc.strerror or exc)
            return None
        digest = hashlib.sha256(data).hexdigest()
        seen[relative] = FileFacts(digest, stat.st_mtime_ns, len(data))
        if before is not None and before.hash == digest:  # touched, not changed
            context.metrics.add("file_source.unchanged", 1)
            return None
        body = self._body(relative, file, data, digest, stat)
        if body.get("markdown") == "" or (body["format"] == "html" and not body["html"].strip()):
            context.metrics.add("file_source.empty", 1)
            return None
        context.metrics.add("file_source.emitted", 1)
        metadata = {"url": body["url"], "path": body["path"]}
        return message.derive(payload=body, metadata=metadata)

    def _body(
        self, relative: str, file: Path, data: bytes, digest: str, stat: os.stat_result
    ) -> JsonDict:
        fmt = FORMATS[file.suffix.lower()]
        base = self.settings.base_url
        url = base.rstrip("/") + "/" + quote(relative) if base else file.as_uri()
        body: JsonDict = {
            "path": str(file),
            "relative_path": relative,
            "url": url,
            "format": fmt,
            "content_type": CONTENT_TYPES[fmt],
            "size": len(data),
            "mtime": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
            "content_hash": digest,
        }
        if fmt == "html":
            body["html"] = data.decode("utf-8", errors="replace")
        elif fmt in ("markdown", "text"):
            text = data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
            markdown, declared = _front_matter(text) if fmt == "markdown" else (text, {})
            title = declared.get("title") or _first_heading(markdown) or file.stem
            front: JsonDict = {
                "url": url,
                "title": str(title),
                "description": declared.get("description"),
                "language": declared.get("language") or declared.get("lang"),
                "document_id": document_id_for(url, markdown),
                "path": relative,
            }
            body["markdown"] = markdown.strip()
            body["front_matter"] = {k: v for k, v in front.items() if v is not None}
        return body
