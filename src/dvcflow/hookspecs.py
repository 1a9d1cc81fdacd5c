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
    DeliveryReport,
    DeliveryRequest,
    DocumentSignature,
    Message,
    MessageReceipt,
    NotificationReceipt,
    PaymentLink,
    PaymentQuery,
    PaymentReport,
    PaymentRequest,
    Provider,
    RefundRequest,
    RefundResult,
    StoredFile,
    TransitionRecord,
)

__all__ = [
    "PROJECT",
    "dvcflow_after_transition",
    "dvcflow_callback_reply",
    "dvcflow_cancel_delivery",
    "dvcflow_cancel_payment",
    "dvcflow_check_provider",
    "dvcflow_create_payment",
    "dvcflow_dispatch_delivery",
    "dvcflow_load_file",
    "dvcflow_parse_receipt",
    "dvcflow_provider_types",
    "dvcflow_query_payment",
    "dvcflow_refund_payment",
    "dvcflow_send_message",
    "dvcflow_sign_document",
    "dvcflow_store_file",
    "dvcflow_track_delivery",
    "dvcflow_verify_callback",
    "dvcflow_verify_delivery_callback",
    "dvcflow_verify_document",
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


# -- delivery ---------------------------------------------------------------------------------


@hookspec(firstresult=True)
def dvcflow_dispatch_delivery(
    provider: Provider, delivery: DeliveryRequest
) -> DeliveryReceipt | None:
    """Send a dossier's result on its way (register the parcel, place the electronic result)."""


@hookspec(firstresult=True)
def dvcflow_verify_delivery_callback(
    provider: Provider, body: bytes, headers: Mapping[str, str]
) -> DeliveryReport | None:
    """Authenticate and parse a courier's status callback.

    Raises:
        SignatureError: the message does not authenticate.
        CallbackError: the body is not a message of this provider (kind ``"malformed"``).
    """


@hookspec(firstresult=True)
def dvcflow_track_delivery(
    provider: Provider, reference: str, provider_ref: str | None
) -> DeliveryReport | None:
    """Ask the courier where a delivery stands (for deliveries whose callbacks stopped)."""


@hookspec(firstresult=True)
def dvcflow_cancel_delivery(
    provider: Provider, reference: str, provider_ref: str | None
) -> bool | None:
    """Revoke a delivery before pickup; ``True`` when the courier cancelled it."""


# -- notification ------------------------------------------------------------------------------


@hookspec(firstresult=True)
def dvcflow_send_message(provider: Provider, message: Message) -> NotificationReceipt | None:
    """Send one rendered message on its channel (email, SMS, Zalo, webhook).

    Raises:
        BackendError: ``retryable=False`` for an address the channel refuses (not a Zalo
            follower, no such mailbox), which moves the message to the next channel.
    """


@hookspec(firstresult=True)
def dvcflow_parse_receipt(
    provider: Provider, body: bytes, headers: Mapping[str, str]
) -> MessageReceipt | None:
    """Authenticate and parse a delivery receipt the provider posts back.

    Raises:
        SignatureError: the receipt does not authenticate.
        CallbackError: the body is not a receipt of this provider (kind ``"malformed"``).
    """


# -- storage and signing --------------------------------------------------------------------------


@hookspec(firstresult=True)
def dvcflow_store_file(
    provider: Provider, content: bytes, media_type: str, name: str
) -> StoredFile | None:
    """Keep a result or an attachment, addressed by the SHA-256 of its content.

    Storing the same content twice keeps one copy and returns the same digest.
    """


@hookspec(firstresult=True)
def dvcflow_load_file(provider: Provider, digest: str) -> bytes | None:
    """The content stored under ``digest``.

    Raises:
        BackendError: not retryable, when nothing is stored under it; `TamperedHistoryError`
            when what is stored no longer has that digest.
    """


@hookspec(firstresult=True)
def dvcflow_sign_document(provider: Provider, digest: str) -> DocumentSignature | None:
    """Sign a stored file's digest (the place where a PKI or remote-signing service plugs in)."""


@hookspec(firstresult=True)
def dvcflow_verify_document(
    provider: Provider, digest: str, signature: DocumentSignature
) -> bool | None:
    """Whether ``signature`` is a valid signature of ``digest`` by a key this provider trusts."""


# -- observers ------------------------------------------------------------------------------------


@hookspec
def dvcflow_after_transition(transition: TransitionRecord) -> None:
    """Called in the engine's process after a command's transaction committed.

    Every implementation is called; one that raises is logged and does not stop the others
    or the command. Observers see each transition at most once (a process that dies right
    after the commit does not call them): what must happen at least once belongs in the
    outbox, as an effect.
    """
