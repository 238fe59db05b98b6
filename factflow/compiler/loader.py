"""Read pipeline YAML keeping the file, line and column of every key and value.

PyYAML's composed nodes carry marks; we build plain Python values from them ourselves so
that (a) each value's position is kept by its path and (b) a duplicate mapping key is an
error instead of PyYAML's silent "last one wins".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from factflow.compiler.diagnostics import Issue, Location
from factflow.types import JsonDict

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    column: int


@dataclass
class LoadedYaml:
    """A parsed document, its source lines, and the position of each path."""

    file: str
    text: str
    data: Any = None
    key_positions: dict[PathKey, Position] = field(default_factory=dict)
    value_positions: dict[PathKey, Position] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def locate(self, path: PathKey, *, at_key: bool = False) -> Location:
        """Where `path` is in the file: its key or value, else its nearest known parent."""
        probe = path
        while True:
            first, second = (
                (self.key_positions, self.value_positions)
                if at_key
                else (self.value_positions, self.key_positions)
            )
            pos = first.get(probe) or second.get(probe)
            if pos is not None:
                return Location(self.file, pos.line, pos.column)
            if not probe:
                return Location(self.file, 1, 1)
            probe = probe[:-1]


def _position(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


MAX_VALUES = 100_000
"""More values than this (after expanding aliases) is an error, not a hang."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooLarge(Exception):
    pass


class _Builder:
    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.constructor = SafeConstructor()
        self.count = 0
        self.active: set[int] = set()  # nodes being built: an alias back into one is a loop
        self.own_keys: dict[int, set[int]] = {}  # mapping node -> ids of its non-merged keys

    def build(self, node: Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge
        self.loaded.value_positions[path] = _position(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.active:
            self.loaded.value_positions.pop(path)  # that is the anchor's place: use the key's
            self._error(path, "an alias refers to a value that contains it (a loop)")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            assert isinstance(node, SequenceNode)
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: ScalarNode, path: PathKey) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, KeyError, TypeError, OverflowError):
            # e.g. `2020-13-01` read as a date, `!!int abc`: keep the text, report it
            self._error(path, f"cannot read {node.value!r} as {node.tag.rpartition(':')[2]}")
            return node.value

    def _error(self, path: PathKey, message: str) -> None:
        self.loaded.issues.append(
            Issue.error(
                "E001",
                path,
                f"YAML value error: {message}",
                "fix or quote the value",
                self.loaded.locate(path),
            )
        )

    def _mapping(self, node: MappingNode, path: PathKey) -> JsonDict:
        if id(node) not in self.own_keys:
            self.own_keys[id(node)] = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
            self.constructor.flatten_mapping(node)  # resolves `<<: *anchor` merges
        own = self.own_keys[id(node)]
        result: JsonDict = {}
        seen_own: set[str] = set()
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            child = (*path, key)
            is_own = id(key_node) in own
            if key in seen_own and is_own:
                first = self.loaded.key_positions[child]
                self.loaded.issues.append(
                    Issue.error(
                        "E002",
                        child,
                        f"duplicate key '{key}' (first defined on line {first.line})",
                        "remove or rename one of them: YAML keeps only the last, so the "
                        "first would be silently lost",
                        Location(self.loaded.file, *_pos(key_node)),
                    )
                )
                continue
            if is_own:
                seen_own.add(key)
            if key in result:  # a key of this mapping overrides a merged one
                self._forget(child)
            self.loaded.key_positions[child] = _position(key_node)
            result[key] = self.build(value_node, child)
        return result

    def _key(self, node: Node, path: PathKey) -> str:
        if isinstance(node, ScalarNode):
            key = self._scalar(node, path)
            return key if isinstance(key, str) else str(key)
        buffer = node.start_mark.buffer
        if buffer is None:  # libyaml's marks carry no buffer (their indexes are the same)
            buffer = self.loaded.text
        if isinstance(buffer, str):  # a list or mapping used as a key: keep its text
            return buffer[node.start_mark.index : node.end_mark.index].strip()
        return f"<{_kind(node)} key>"

    def _forget(self, path: PathKey) -> None:
        for positions in (self.loaded.key_positions, self.loaded.value_positions):
            for known in [p for p in positions if p[: len(path)] == path]:
                del positions[known]


# libyaml's parser when PyYAML has it (~10x faster: a server compiles every POSTed YAML);
# the nodes, marks and errors are the same kinds
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MAX_DEPTH = 1_000
"""Deeper nesting is refused before composing: libyaml's composer recurses in C and
crashes the process (a segfault, not a RecursionError) somewhere past 20,000 levels."""
_DEPTH_SCAN_FROM = 5_000  # a shorter text cannot nest deeper than its length, which is safe
_OPENING = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSING = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _check_depth(text: str) -> None:
    """RecursionError when `text` nests deeper than MAX_DEPTH; the parser's events come
    from a loop (no recursion), so any depth is safe to count."""
    if len(text) <= _DEPTH_SCAN_FROM:
        return
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, _OPENING):
            depth += 1
            if depth > MAX_DEPTH:
                msg = f"YAML nested deeper than {MAX_DEPTH} levels"
                raise RecursionError(msg)
        elif isinstance(event, _CLOSING):
            depth -= 1


def parse_yaml(text: str) -> Any:
    """`yaml.safe_load` with the same libyaml parser: the plain Python values, no positions.
    RecursionError when nested deeper than MAX_DEPTH."""
    _check_depth(text)
    return yaml.load(text, Loader=_LOADER)


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_text(text: str, file: str = "<string>") -> LoadedYaml:
    """Parse one YAML document; syntax problems become E0xx issues, never exceptions."""
    loaded = LoadedYaml(file=file, text=text)
    try:
        _check_depth(text)
        node = yaml.compose(text, Loader=_LOADER)
    except RecursionError:
        loaded.issues.append(_too_deep(file))
        return loaded
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        loaded.issues.append(
            Issue.error(
                "E001",
                (),
                f"YAML syntax error: {problem}{context}",
                "fix the YAML at this line: check indentation (spaces, not tabs), "
                "unclosed quotes and brackets, and ':' after keys",
                Location(file, line, column),
            )
        )
        return loaded
    except yaml.YAMLError as exc:
        loaded.issues.append(
            Issue.error(
                "E001", (), f"YAML syntax error: {exc}", "fix the YAML", Location(file, 1, 1)
            )
        )
        return loaded
    if node is None:
        loaded.issues.append(
            Issue.error(
                "E003",
                (),
                "the document is empty",
                'start with `version: "1.0"` and a `routes:` mapping',
                Location(file, 1, 1),
            )
        )
        return loaded
    if not isinstance(node, MappingNode):
        loaded.issues.append(
            Issue.error(
                "E003",
                (),
                f"the top level must be a mapping, not a {_kind(node)}",
                'start with `version: "1.0"` and a `routes:` mapping',
                Location(file, *_pos(node)),
            )
        )
        return loaded
    try:
        loaded.data = _Builder(loaded).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        loaded.issues.append(
            Issue.error(
                "E001",
                (),
                f"YAML value error: {exc.problem}",
                "fix or quote the value",
                Location(file, line, column),
            )
        )
        loaded.data = None
    except RecursionError:
        loaded.issues.append(_too_deep(file))
        loaded.data = None
    except _TooLarge:
        loaded.issues.append(
            Issue.error(
                "E001",
                (),
                f"the document expands to more than {MAX_VALUES} values (aliases of aliases?)",
                "write the pipeline without nesting aliases",
                Location(file, 1, 1),
            )
        )
        loaded.data = None
    return loaded


def _too_deep(file: str) -> Issue:
    return Issue.error(
        "E001",
        (),
        "the document is nested too deeply",
        "flatten the nesting",
        Location(file, 1, 1),
    )


def load_file(path: str | Path) -> LoadedYaml:
    """Read and parse a pipeline file; an unreadable file is an E004 issue."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        loaded = LoadedYaml(file=file, text="")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        loaded.issues.append(
            Issue.error(
                "E004",
                (),
                f"cannot read {file}: {reason}",
                "check the path and that the file is UTF-8 text",
                Location(file, 1, 1),
            )
        )
        return loaded
    return load_text(text, file)


def _kind(node: Node) -> str:
    return "list" if isinstance(node, SequenceNode) else "scalar value"
