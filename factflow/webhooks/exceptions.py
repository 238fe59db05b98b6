"""Errors of the webhooks area; each docstring tells the operator what to do."""

from factflow.exceptions import FactflowError


class WebhookError(FactflowError):
    """A webhook subscription or delivery cannot be made as asked."""


class UrlNotAllowedError(WebhookError):
    """The subscription's URL is refused by the outbound allow rule.

    Loopback, private, link-local and reserved addresses are refused unless
    FACTFLOW_WEBHOOK_ALLOW_PRIVATE_URLS=1 (the default in embedded mode), so a webhook
    cannot be used to reach internal services; use a public http(s) URL.
    """
