"""The hooks dvcflow calls: payment, delivery and notification back ends, lifecycle observers.

A plugin is any object (or module) with functions marked `hookimpl` whose names and
arguments match the specifications below; register it with
``Engine.open(..., plugins=[MyPlugin()])`` or through the entry-point group ``dvcflow``::

    # pyproject.toml of a plugin package
    [project.entry - points.dvcflow]
    vnpay = "my_vnpay_plugin"

Rules every back-end hook follows:

- It is called with keyword arguments only, and only through the engine's typed façade.
- ``provider`` is the `Provider` the configuration assigns to the dossier's procedure or
  agency. An implementation answers only when ``provider.type`` is one it serves (see
  `dvcflow_provider_types`) and returns ``None`` otherwise; the first answer wins.
- It raises `BackendError` when the back end fails (``retryable=False`` when trying again
  cannot help); any other exception counts as a retryable technical failure.
- Outbound calls carry the idempotency key they are given: the outbox delivers at least once.

A hook name that is not specified here (a typo) fails at registration with `PluginError`.
Specifications may gain arguments in later versions, never lose or rename them; an
implementation may accept fewer arguments than specified.
"""

from __future__ import annotations

from collections.abc import Mapping

import pluggy

from dvcflow._backends import (
    CallbackReply,
    DeliveryReceipt,
    DeliveryRequest,
    Notification,
    NotificationReceipt,
    PaymentLink,
    PaymentQuery,
    PaymentReport,
    PaymentRequest,
    Provider,
    RefundRequest,
    RefundResult,
    TransitionRecord,
)

__all__ = [
    "PROJECT",
    "dvcflow_after_transition",
    "dvcflow_callback_reply",
    "dvcflow_cancel_payment",
    "dvcflow_check_provider",
    "dvcflow_create_payment",
    "dvcflow_dispatch_delivery",
    "dvcflow_provider_types",
    "dvcflow_query_payment",
    "dvcflow_refund_payment",
    "dvcflow_send_notification",
    "dvcflow_verify_callback",
    "hookimpl",
    "hookspec",
]

PROJECT = "dvcflow"
"""The pluggy project name and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- every plugin -------------------------------------------------------------------------------


@hookspec
def dvcflow_provider_types() -> list[str]:  # type: ignore[empty-body]
    """The provider types this plugin serves, e.g. ``["national_payment"]``.

    Every plugin with back-end hooks implements it: a configured provider whose type no
    plugin serves is a configuration error when the engine opens.
    """


@hookspec(firstresult=True)
def dvcflow_check_provider(provider: Provider) -> list[str] | None:
    """Check a provider's settings and secrets when the engine opens.

    Returns:
        ``None`` when the provider is not this plugin's; otherwise the problems found, each
        naming the setting, e.g. ``["settings.url: must be an http(s) URL"]`` (empty: fine).
    """


# -- payment --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def dvcflow_create_payment(provider: Provider, request: PaymentRequest) -> PaymentLink | None:
    """Start a payment at the provider (the national platform's INIT); return its link."""


@hookspec(firstresult=True)
def dvcflow_verify_callback(
    provider: Provider, body: bytes, headers: Mapping[str, str]
) -> PaymentReport | None:
    """Authenticate and parse a payment callback as the provider sent it.

    Raises:
        SignatureError: the message does not authenticate (forged or altered).
        CallbackError: the body is not a message of this provider (kind ``"malformed"``).
    """


@hookspec(firstresult=True)
def dvcflow_callback_reply(
    provider: Provider,
    accepted: bool,  # noqa: FBT001 - hooks are always called with keyword arguments
    error: str | None,
) -> CallbackReply | None:
    """The response the provider expects to a callback, accepted or rejected (``error``)."""


@hookspec(firstresult=True)
def dvcflow_query_payment(provider: Provider, query: PaymentQuery) -> PaymentReport | None:
    """Ask the provider where a payment stands (the reconciler's poll, QUERY)."""


@hookspec(firstresult=True)
def dvcflow_cancel_payment(provider: Provider, query: PaymentQuery) -> bool | None:
    """Cancel a payment link that must not be paid any more; ``True`` when cancelled."""


@hookspec(firstresult=True)
def dvcflow_refund_payment(provider: Provider, refund: RefundRequest) -> RefundResult | None:
    """Give back (part of) a paid fee."""


# -- delivery and notification -----------------------------------------------------------------


@hookspec(firstresult=True)
def dvcflow_dispatch_delivery(
    provider: Provider, delivery: DeliveryRequest
) -> DeliveryReceipt | None:
    """Send a dossier's result on its way (post, electronic store, counter)."""


@hookspec(firstresult=True)
def dvcflow_send_notification(
    provider: Provider, notification: Notification
) -> NotificationReceipt | None:
    """Send a notification to the applicant or an officer."""


# -- observers ------------------------------------------------------------------------------------


@hookspec
def dvcflow_after_transition(transition: TransitionRecord) -> None:
    """Called in the engine's process after a command's transaction committed.

    Every implementation is called; one that raises is logged and does not stop the others
    or the command. Observers see each transition at most once (a process that dies right
    after the commit does not call them): what must happen at least once belongs in the
    outbox, as an effect.
    """
