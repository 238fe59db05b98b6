"""The CLI's server commands (httpx): config create|list|get|edit|run|delete, execution,
lineage, storage, pipeline, system, search, index, chat, usage, webhook, event, schedule,
keys, users and audit groups, `create-admin`, with global --server / --output / --timeout /
--api-key.

`mount(app)` adds them to the root typer app; `factflow serve` starts the server.
"""

from __future__ import annotations

import typer

from factflow.cli.client import configs as _configs  # noqa: F401 - registers on config_app
from factflow.cli.client.chat import chat_app, usage_command
from factflow.cli.client.deadletters import queue_app
from factflow.cli.client.executions import execution_app
from factflow.cli.client.http import client_options
from factflow.cli.client.keys import audit_app, create_admin, keys_app, users_app
from factflow.cli.client.lineage import lineage_app
from factflow.cli.client.search import index_app, search_app
from factflow.cli.client.storage import storage_app
from factflow.cli.client.system import pipeline_app, system_app
from factflow.cli.client.triggers import event_app, schedule_app
from factflow.cli.client.webhooks import webhook_app


def mount(app: typer.Typer) -> None:
    """Add the global client options and the server command groups to `app`."""
    from factflow.cli.recovery import deadletters_app
    from factflow.cli.serve import serve_command

    deadletters_app.add_typer(queue_app, name="queue")

    app.callback()(client_options)
    app.command("serve")(serve_command)
    app.add_typer(execution_app, name="execution")
    app.add_typer(lineage_app, name="lineage")
    app.add_typer(storage_app, name="storage")
    app.add_typer(pipeline_app, name="pipeline")
    app.add_typer(system_app, name="system")
    app.add_typer(search_app, name="search")
    app.add_typer(index_app, name="index")
    app.add_typer(chat_app, name="chat")
    app.command("usage")(usage_command)
    app.add_typer(webhook_app, name="webhook")
    app.add_typer(event_app, name="event")
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(keys_app, name="keys")
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
    app.command("create-admin")(create_admin)


__all__ = ["mount"]
