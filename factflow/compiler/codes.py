"""Every validation code factflow reports, in the seed system's taxonomy.

E001-E099 YAML syntax, E1xx structure and registry, E2xx references between parts,
E3xx adapter config, E4xx settings (providers, names, storage, numbers), W5xx warnings.
`docs/errors.md` documents each one; a test keeps the two lists equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    title: str
    downgradable: bool = False
    """True when the pipeline can still run if the issue is only warned about."""


CODES: dict[str, Code] = {
    c.code: c
    for c in [
        Code("E001", "YAML syntax error"),
        Code("E002", "duplicate mapping key"),
        Code("E003", "empty document or top level not a mapping"),
        Code("E004", "file cannot be read"),
        Code("E101", "unknown key"),
        Code("E102", "missing required key"),
        Code("E103", "unknown adapter type"),
        Code("E104", "wrong value type"),
        Code("E105", "invalid value"),
        Code("E106", "invalid route id or pipeline name"),
        Code("E107", "adapter class cannot be used"),
        Code("E108", "malformed condition"),
        Code("E110", "unknown condition operator"),
        Code("E111", "invalid regular expression in `matches`"),
        Code("E112", "malformed field path"),
        Code("E113", "unknown sink type"),
        Code("E114", "sink writer cannot be used"),
        Code("E115", "invalid cron expression"),
        Code("E116", "unknown time zone"),
        Code("E117", "trigger is neither an event trigger nor a schedule, or mixes them"),
        Code("E201", "init_message.route names no route"),
        Code("E202", "queue read but never written, and no provider serves it"),
        Code("E203", "cycle between routes without `loop: true`", downgradable=True),
        Code("E204", "route writes its own inbound queue"),
        Code("E205", "dead-letter queue is also a route's inbound queue"),
        Code("E206", "`loop: true` without a provider that can carry the loop"),
        Code("E207", "trigger input_queue is no route's inbound queue"),
        Code("E208", "trigger init_payload without an init_message"),
        Code("E301", "unknown adapter config field", downgradable=True),
        Code("E302", "missing required adapter config field"),
        Code("E303", "adapter config value fails its schema"),
        Code("E401", "unknown queue provider"),
        Code("E402", "queue name breaks the provider's rules", downgradable=True),
        Code("E403", "unknown storage URI scheme"),
        Code("E404", "inconsistent numbers", downgradable=True),
        Code("E405", "number out of range"),
        Code("E406", "provider setting missing"),
        Code("E407", "client library of a provider not installed"),
        Code("W501", "stateful adapter on a route without `key:`"),
        Code("W502", "prefetch smaller than concurrency"),
        Code("W503", "no outbound catches every result"),
        Code("W504", "nothing starts the pipeline"),
        Code("W505", "`key:` on a route without a stateful adapter"),
        Code("W506", "route output goes nowhere"),
        Code("W507", "queue read but never written, like one that is written"),
    ]
}
