"""`factflow keys create|list|get|revoke|rotate`, `factflow users create|list|set-role|
set-password|disable|enable` and `factflow audit`, through the API with FACTFLOW_API_KEY.

`factflow keys create --admin --owner EMAIL` and `factflow create-admin --email EMAIL` are
the bootstrap: they write the first admin key, or the first admin with a login password,
straight into the database (FACTFLOW_DATABASE_URL, FACTFLOW_AUTH_SECRET: the server's own),
for a server that nobody can reach yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from factflow.cli.client.http import OutputOption, call, emit, fail, parse_duration, wants_json
from factflow.cli.common import emit_json

keys_app = typer.Typer(
    help="API keys: create (shown once), list, revoke, rotate.", no_args_is_help=True
)
users_app = typer.Typer(help="Users and their roles (admin, member, viewer).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: who changed what, when, from where.")

KEY_COLUMNS = ("id", "prefix", "type", "name", "owner_email", "scopes", "status", "expires_at",
               "last_used_at")  # fmt: skip
USER_COLUMNS = ("id", "email", "role", "disabled", "created_at")
KeyIdArg = Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (keys list).")]
UserArg = Annotated[str, typer.Argument(metavar="USER", help="The user's email or id.")]
AUTH_SECRET_ENV = "FACTFLOW_AUTH_SECRET"


def _show_created(data: dict[str, Any], output: OutputOption) -> None:
    if wants_json(output):
        emit_json(data)
        return
    typer.echo(data["key"])
    typer.secho(
        f"{data['prefix']} ({data['type']}, {', '.join(data['scopes'])}) for {data['owner_email']}:"
        " store the key now, it is not shown again",
        err=True,
        fg=typer.colors.YELLOW,
    )


def _server_database() -> tuple[str, str]:
    """The database URL and auth secret of the server's settings (for the bootstraps)."""
    from pydantic import ValidationError

    from factflow.db.exceptions import DatabaseNotConfiguredError
    from factflow.db.settings import DatabaseSettings
    from factflow.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        fail(str(exc))
    if settings.auth_secret is None:
        fail(f"this writes to the database: set {AUTH_SECRET_ENV} (the server's, >= 32 chars)")
    try:
        url = DatabaseSettings.of(settings).require_url()
    except DatabaseNotConfiguredError as exc:
        fail(str(exc))
    return url, settings.auth_secret.get_secret_value()


def _bootstrap(owner: str, name: str, output: OutputOption) -> None:
    from factflow.api.schemas.auth import KeyCreated, KeyResponse
    from factflow.auth.service import bootstrap_admin_key
    from factflow.db.connection import connect
    from factflow.db.exceptions import DatabaseError
    from factflow.db.migrate import migrate

    url, secret = _server_database()
    try:
        with connect(url) as conn:
            migrate(conn)
            issued = bootstrap_admin_key(conn, secret, owner, name=name)
    except DatabaseError as exc:
        fail(str(exc))
    created = KeyCreated(**KeyResponse.of(issued.record).model_dump(), key=issued.key)
    _show_created(created.model_dump(mode="json"), output)


def _read_password(from_stdin: bool) -> str:
    import sys

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin (scripts)."
    ),
]


def create_admin(
    email: Annotated[str, typer.Option("--email", metavar="EMAIL", help="The admin's email.")],
    password_stdin: PasswordStdinOption = False,
    output: OutputOption = None,
) -> None:
    """Create the first admin (or make EMAIL one) with a login password, written straight
    into the database (FACTFLOW_DATABASE_URL and FACTFLOW_AUTH_SECRET: the server's)."""
    from factflow.api.schemas.auth import UserResponse
    from factflow.auth.exceptions import PasswordPolicyError
    from factflow.auth.sessions import bootstrap_admin
    from factflow.db.connection import connect
    from factflow.db.exceptions import DatabaseError
    from factflow.db.migrate import migrate

    url, _ = _server_database()
    password = _read_password(password_stdin)
    try:
        with connect(url) as conn:
            migrate(conn)
            user = bootstrap_admin(conn, email, password)
    except (DatabaseError, PasswordPolicyError) as exc:
        fail(str(exc))
    if wants_json(output):
        emit_json(UserResponse.of(user).model_dump(mode="json"))
        return
    typer.echo(f"{user.email} is an admin and can log in (POST /api/v1/auth/login)")


def _expiry(expires: str | None) -> str | None:
    if expires is None:
        return None
    try:
        return datetime.fromisoformat(expires).isoformat()
    except ValueError:
        return (datetime.now(UTC) + timedelta(seconds=parse_duration(expires))).isoformat()


@keys_app.command("create")
def create(
    name: Annotated[
        str, typer.Option("--name", metavar="TEXT", help="What the key is for.")
    ] = "cli",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", metavar="SCOPE", help="A scope (repeat): configs:read, ..."),
    ] = None,
    key_type: Annotated[
        str, typer.Option("--type", metavar="TYPE", help="live, test or ro (read-only).")
    ] = "live",
    owner: Annotated[
        str | None, typer.Option("--owner", metavar="EMAIL", help="The owner (default: you).")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", metavar="WHEN", help="A duration (30d, 12h) or ISO time."),
    ] = None,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="Bootstrap: an admin key for --owner, written to the database."
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Create a key and print it (once: only its hash is kept)."""
    if admin:
        if owner is None:
            fail("--admin needs --owner EMAIL (the admin user is created if missing)", 2)
        _bootstrap(owner, name if name != "cli" else "bootstrap admin", output)
        return
    if not scope:
        fail("give at least one --scope (e.g. --scope configs:read)", 2)
    body = {"name": name, "type": key_type, "scopes": scope, "owner_email": owner,
            "expires_at": _expiry(expires)}  # fmt: skip
    _show_created(call("POST", "/keys", json=body), output)


@keys_app.command("list")
def list_keys(
    owner: Annotated[
        str | None, typer.Option("--owner", metavar="EMAIL", help="Only this user's keys.")
    ] = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
    output: OutputOption = None,
) -> None:
    """Keys by prefix (the keys themselves are never shown again)."""
    params: dict[str, Any] = {"include_revoked": include_revoked}
    if owner:
        params["owner_email"] = owner
    emit(call("GET", "/keys", params=params), output, KEY_COLUMNS)


@keys_app.command("get")
def get(key_id: KeyIdArg, output: OutputOption = None) -> None:
    """One key: prefix, owner, scopes, status, expiry, last use."""
    emit(call("GET", f"/keys/{key_id}"), output)


@keys_app.command("revoke")
def revoke(key_id: KeyIdArg, output: OutputOption = None) -> None:
    """Revoke now: the next request with the key is refused."""
    emit(call("POST", f"/keys/{key_id}/revoke"), output, KEY_COLUMNS)


@keys_app.command("rotate")
def rotate(
    key_id: KeyIdArg,
    grace: Annotated[
        str, typer.Option("--grace", metavar="DURATION", help="How long the old key still works.")
    ] = "24h",
    output: OutputOption = None,
) -> None:
    """A new key with the same scopes; the old one works for --grace more."""
    body = {"grace_seconds": int(parse_duration(grace))}
    _show_created(call("POST", f"/keys/{key_id}/rotate", json=body), output)


def _user_id(user: str) -> str:
    if "@" not in user:
        return user
    found = [
        u
        for u in call("GET", "/users", params={"limit": 1000})
        if u["email"].lower() == user.lower()
    ]
    if not found:
        fail(f"no user {user} (factflow users list)")
    return str(found[0]["id"])


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option("--email", metavar="EMAIL", help="The user's email.")],
    role: Annotated[
        str, typer.Option("--role", metavar="ROLE", help="admin, member or viewer.")
    ] = "viewer",
    name: Annotated[
        str | None, typer.Option("--name", metavar="TEXT", help="Display name.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Create a user (admins only); give them a key with `keys create --owner EMAIL`."""
    emit(call("POST", "/users", json={"email": email, "role": role, "name": name}), output)


@users_app.command("list")
def list_users(output: OutputOption = None) -> None:
    """Every user with their role."""
    emit(call("GET", "/users", params={"limit": 1000}), output, USER_COLUMNS)


@users_app.command("set-role")
def set_role(
    user: UserArg,
    role: Annotated[str, typer.Argument(metavar="ROLE", help="admin, member or viewer.")],
    output: OutputOption = None,
) -> None:
    """Change the role; the user's keys can do no more than the new role allows."""
    emit(call("PATCH", f"/users/{_user_id(user)}", json={"role": role}), output)


@users_app.command("set-password")
def set_password(
    user: UserArg, password_stdin: PasswordStdinOption = False, output: OutputOption = None
) -> None:
    """Set the user's login password (12 to 1024 characters); their sessions end."""
    body = {"password": _read_password(password_stdin)}
    emit(call("PUT", f"/users/{_user_id(user)}/password", json=body), output, USER_COLUMNS)


users_app.command("create-admin")(create_admin)


@users_app.command("disable")
def disable(user: UserArg, output: OutputOption = None) -> None:
    """Disable the user: their keys stop working until enabled."""
    emit(call("PATCH", f"/users/{_user_id(user)}", json={"disabled": True}), output)


@users_app.command("enable")
def enable(user: UserArg, output: OutputOption = None) -> None:
    """Enable a disabled user again."""
    emit(call("PATCH", f"/users/{_user_id(user)}", json={"disabled": False}), output)


AUDIT_COLUMNS = ("id", "occurred_at", "actor", "key_prefix", "action", "resource_id",
                 "status_code", "client_address")  # fmt: skip


@audit_app.callback(invoke_without_command=True)
def audit(
    actor: Annotated[
        str | None, typer.Option("--actor", metavar="EMAIL", help="Only this actor.")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", metavar="NAME", help="e.g. delete_config.")
    ] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", metavar="ID", help="Only this resource id.")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", metavar="OUTCOME", help="success, denied, failed.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="WHEN", help="A duration (1h, 7d) or ISO time.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="At most this many, newest first.")
    ] = 50,
    output: OutputOption = None,
) -> None:
    """Who changed what, when and from where (admins only), newest first."""
    params: dict[str, Any] = {"limit": limit, "actor": actor, "action": action,
                              "resource_id": resource, "outcome": outcome}  # fmt: skip
    if since is not None:
        try:
            params["since"] = datetime.fromisoformat(since).isoformat()
        except ValueError:
            params["since"] = (
                datetime.now(UTC) - timedelta(seconds=parse_duration(since))
            ).isoformat()
    params = {k: v for k, v in params.items() if v is not None}
    emit(call("GET", "/audit", params=params), output, AUDIT_COLUMNS)
