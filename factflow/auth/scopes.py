"""Scopes (what a route needs) and roles (what a person may do), in one table each.

A scope names a domain and an action (`configs:read`); `admin` grants every scope. Read
scopes end in `:read`: they are the only ones a viewer or an `ff_ro_` key can hold.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    CONFIGS_READ = "configs:read"
    CONFIGS_WRITE = "configs:write"
    EXECUTIONS_READ = "executions:read"
    EXECUTIONS_RUN = "executions:run"
    LINEAGE_READ = "lineage:read"
    STORAGE_READ = "storage:read"
    SEARCH_READ = "search:read"
    SYSTEM_READ = "system:read"
    CHAT_USE = "chat:use"
    WEBHOOKS_MANAGE = "webhooks:manage"
    KEYS_MANAGE = "keys:manage"
    ADMIN = "admin"

    @property
    def reads_only(self) -> bool:
        return self.value.endswith(":read")


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)
READ_SCOPES: frozenset[Scope] = frozenset(s for s in Scope if s.reads_only)


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: ALL_SCOPES,
    # create and run configs, replay, webhooks, chat; no keys of others, no users, no admin
    Role.MEMBER: READ_SCOPES
    | {Scope.CONFIGS_WRITE, Scope.EXECUTIONS_RUN, Scope.CHAT_USE, Scope.WEBHOOKS_MANAGE},
    Role.VIEWER: READ_SCOPES,
}


def grants(held: frozenset[Scope], needed: Scope) -> bool:
    """Whether scopes `held` allow a route that needs `needed` (`admin` allows all)."""
    return needed in held or Scope.ADMIN in held


def parse_scopes(values: list[str] | tuple[str, ...]) -> frozenset[Scope]:
    """Scope names -> scopes; ValueError naming the unknown ones and the known ones."""
    unknown = sorted(v for v in values if v not in Scope._value2member_map_)
    if unknown:
        known = ", ".join(s.value for s in Scope)
        msg = f"unknown scope(s) {', '.join(unknown)}; known: {known}"
        raise ValueError(msg)
    return frozenset(Scope(v) for v in values)
