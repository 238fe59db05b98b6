"""Reports and plans for people: diagnostics with numbered source lines, plan text, mermaid."""

from __future__ import annotations

import re

from factflow.compiler.compile import CompileResult
from factflow.compiler.config import TriggerConfig
from factflow.compiler.diagnostics import Issue, format_path
from factflow.compiler.plan import Plan

CONTEXT_LINES = 2


def render_issue(issue: Issue, source_lines: list[str]) -> str:
    """`file:line:col: error E103 message`, the numbered lines around it, and the fix."""
    loc = issue.location
    head = f"{loc.file}:{loc.line}:{loc.column}: " if loc else ""
    out = [f"{head}{issue.severity} {issue.code} {issue.message}"]
    if loc and 0 < loc.line <= len(source_lines):
        first = max(1, loc.line - CONTEXT_LINES)
        last = min(len(source_lines), loc.line + CONTEXT_LINES)
        width = len(str(last))
        for number in range(first, last + 1):
            marker = ">" if number == loc.line else " "
            out.append(f"  {marker} {number:>{width}} | {source_lines[number - 1]}")
            if number == loc.line:
                out.append(f"    {' ' * width} | {' ' * (loc.column - 1)}^")
    if issue.path:
        out.append(f"    at: {format_path(issue.path)}")
    out.append(f"    fix: {issue.suggestion}")
    return "\n".join(out)


def render_report(result: CompileResult) -> str:
    lines = result.loaded.text.splitlines()
    blocks = [render_issue(issue, lines) for issue in result.report.issues]
    report = result.report
    status = "valid" if report.is_valid else "invalid"
    blocks.append(
        f"{result.loaded.file}: {status}, {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s)"
    )
    return "\n\n".join(blocks)


def render_plan(plan: Plan) -> str:
    out = [
        f"pipeline {plan.pipeline} (version {plan.version}, queue provider {plan.queue.provider})"
    ]
    if plan.description:
        out.append(f"  {plan.description}")
    out.append("routes:")
    for route in plan.routes:
        chain = " -> ".join(a.type for a in route.adapters) or "(no adapters)"
        targets = (
            ", ".join(o.queue + (" [if]" if o.condition else "") for o in route.outbound)
            or "(nowhere)"
        )
        keyed = f"  key={route.key}" if route.key else ""
        out.append(f"  {route.id}: {route.inbound_queue} -> {chain} -> {targets}{keyed}")
        out.extend(
            f"      step {a.step_id}{'  (stateful)' if a.stateful else ''}" for a in route.adapters
        )
    out.append("edges:")
    out.extend(f"  {e.queue}: {e.from_route} -> {e.to_route}" for e in plan.edges)
    if not plan.edges:
        out.append("  (none)")
    out.append("sources:")
    out.extend(
        f"  {s.queue} ({s.provider}{_scope(plan, s.queue)}) -> {', '.join(s.routes)}"
        for s in plan.sources
    )
    if not plan.sources:
        out.append("  (none)")
    out.append("sinks:")
    out.extend(
        f"  {s.queue} ({s.provider}{_scope(plan, s.queue)}) <- {', '.join(s.routes)}"
        for s in plan.sinks
    )
    if not plan.sinks:
        out.append("  (none)")
    if plan.init_message:
        out.append(f"init_message: -> {plan.init_message.route} ({plan.init_message.queue})")
    out.append("dead letters:")
    out.extend(f"  {d.route} -> {d.queue} ({d.provider})" for d in plan.dead_letters)
    if plan.triggers:
        out.append("triggers (registered when the config is saved):")
        out.extend(f"  {_trigger(t)}" for t in plan.triggers)
    out.append(
        "completion: when every route drains"
        if plan.drains
        else "completion: runs until cancelled or idle_timeout_seconds (it reads a global queue)"
    )
    return "\n".join(out)


def _trigger(trigger: TriggerConfig) -> str:
    if trigger.cron is not None:
        what = f"schedule '{trigger.cron}' ({trigger.timezone}, missed: {trigger.missed})"
    else:
        where = f" -> {trigger.input_queue}" if trigger.input_queue else ""
        when = " [if]" if trigger.condition else ""
        what = f"event '{trigger.event}'{when}{where}"
        if trigger.rate_limit:
            what += (
                f", at most {trigger.rate_limit.limit} per {trigger.rate_limit.period_seconds:g} s"
            )
        if trigger.debounce:
            what += f", debounced {trigger.debounce.period_seconds:g} s"
    if trigger.max_running is not None:
        what += f", max {trigger.max_running} running"
    return what


def _scope(plan: Plan, queue: str) -> str:
    """`, scoped as <name>` for a queue scoped to the execution (the id shown as <id>)."""
    if queue not in plan.scoped_queues:
        return ""
    return f", scoped: {plan.queue_name(queue, '<execution-id>')}"


_MERMAID_ID = re.compile(r"[^A-Za-z0-9_]")


def _node(prefix: str, name: str) -> str:
    return f"{prefix}_{_MERMAID_ID.sub('_', name)}"


def render_mermaid(plan: Plan) -> str:
    """A flowchart: routes as boxes, queues as cylinders, init as a circle."""
    out = ["flowchart LR"]
    queues = {r.inbound_queue for r in plan.routes} | {
        o.queue for r in plan.routes for o in r.outbound
    }
    out.extend(f'  {_node("q", q)}[("{q}")]' for q in sorted(queues))
    for route in plan.routes:
        chain = " → ".join(a.type for a in route.adapters)
        out.append(f'  {_node("r", route.id)}["{route.name}<br/>{chain}"]')
        out.append(f"  {_node('q', route.inbound_queue)} --> {_node('r', route.id)}")
        for outbound in route.outbound:
            arrow = "-- if -->" if outbound.condition else "-->"
            out.append(f"  {_node('r', route.id)} {arrow} {_node('q', outbound.queue)}")
        out.append(
            f"  {_node('r', route.id)} -. dead letters .-> {_node('q', route.dead_letter_queue)}"
        )
    dlqs = {r.dead_letter_queue for r in plan.routes} - queues
    out.extend(f'  {_node("q", q)}[("{q}")]' for q in sorted(dlqs))
    if plan.init_message:
        out.append("  init((init_message))")
        out.append(f"  init --> {_node('r', plan.init_message.route)}")
    return "\n".join(out)
