"""The typed façade over pluggy: the one caller of every hook, with the provider configured."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pluggy

from dvcflow import hookspecs
from dvcflow._backend_config import Routing
from dvcflow._backends import (
    CallbackReply,
    DeliveryReceipt,
    DeliveryReport,
    DeliveryRequest,
    DocumentSignature,
    Family,
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
from dvcflow.errors import BackendError, ConfigurationError, NotFoundError, PluginError, Problem

__all__ = ["Backends", "builtin_plugins"]

logger = logging.getLogger("dvcflow")

T = TypeVar("T")


def builtin_plugins() -> list[object]:
    """Fresh instances of the reference back ends dvcflow registers by default."""
    # Imported here: the plugins import the specifications, which import this package.
    from dvcflow.plugins.courier import HttpCourier  # noqa: PLC0415
    from dvcflow.plugins.ed25519 import Ed25519Signer  # noqa: PLC0415
    from dvcflow.plugins.fake import FakeBackend  # noqa: PLC0415
    from dvcflow.plugins.filesystem import FilesystemStore  # noqa: PLC0415
    from dvcflow.plugins.national_payment import NationalPaymentPlugin  # noqa: PLC0415
    from dvcflow.plugins.sms_gateway import SmsGateway  # noqa: PLC0415
    from dvcflow.plugins.smtp import SmtpEmail  # noqa: PLC0415
    from dvcflow.plugins.webhook import Webhook  # noqa: PLC0415

    return [
        FakeBackend(),
        NationalPaymentPlugin(),
        FilesystemStore(),
        Ed25519Signer(),
        HttpCourier(),
        SmtpEmail(),
        SmsGateway(),
        Webhook(),
    ]


class Backends:
    """Plugins registered, checked against the specifications, and called with typed results.

    Args:
        providers: the configured providers, secrets resolved.
        routing: which provider serves which family for whom.
        plugins: plugins given explicitly; they take the place of a built-in one serving the
            same provider type.
        entry_points: also load the plugins of the ``dvcflow`` entry-point group.
        source: the configuration's name, for errors.

    Raises:
        PluginError: a plugin implements a hook that is not specified (a typo) or with
            arguments the specification does not have, or two plugins serve one type.
        ConfigurationError: a provider's type is served by no plugin, or its plugin finds
            problems with its settings.
    """

    def __init__(
        self,
        *,
        providers: Mapping[str, Provider],
        routing: Routing,
        plugins: Sequence[object] = (),
        entry_points: bool = True,
        source: str = "<config>",
    ) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self.routing = routing
        self.providers = dict(providers)
        for plugin in plugins:
            self._register(plugin)
        if entry_points:
            try:
                self._pm.load_setuptools_entrypoints(hookspecs.PROJECT)
            except pluggy.PluginValidationError as exc:
                raise PluginError(f"plugin {exc.plugin!r}: {exc}") from exc
        self.types = self._served_types()
        for plugin in builtin_plugins():
            if not set(self._types_of(plugin)) & set(self.types):
                self._register(plugin)
        self.types = self._served_types()
        self._check_pending()
        self._check_providers(source)
        self._observers = bool(self._pm.hook.dvcflow_after_transition.get_hookimpls())

    # -- registration --------------------------------------------------------------------------

    def _register(self, plugin: object) -> None:
        try:
            self._pm.register(plugin)
        except ValueError as exc:
            raise PluginError(f"plugin {plugin!r} is registered twice: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {plugin!r}: {exc}") from exc

    def _check_pending(self) -> None:
        # pluggy accepts hook implementations without a specification until asked: a
        # misspelt hook would otherwise never be called and never complain.
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("dvcflow_")))
            raise PluginError(f"{exc} (the hooks are: {known})") from exc

    @staticmethod
    def _types_of(plugin: object) -> list[str]:
        function = getattr(plugin, "dvcflow_provider_types", None)
        if function is None:
            return []
        types = function()
        return [str(name) for name in types or ()]

    def _served_types(self) -> dict[str, object]:
        served: dict[str, object] = {}
        for impl in self._pm.hook.dvcflow_provider_types.get_hookimpls():
            names: Sequence[str] = impl.function() or []  # type: ignore[assignment]
            for name in names:
                other = served.get(name)
                if other is not None and other is not impl.plugin:
                    raise PluginError(
                        f"provider type {name!r} is served by two plugins: "
                        f"{self._pm.get_name(other)} and {impl.plugin_name}"
                    )
                served[name] = impl.plugin
        return served

    def _check_providers(self, source: str) -> None:
        problems = []
        for name, provider in self.providers.items():
            if provider.type not in self.types:
                known = ", ".join(sorted(self.types)) or "none"
                problems.append(
                    Problem(
                        source,
                        f"providers.{name}.type",
                        f"no plugin serves type {provider.type!r} (served: {known})",
                    )
                )
                continue
            found = self._pm.hook.dvcflow_check_provider(provider=provider) or []
            problems.extend(Problem(source, f"providers.{name}", text) for text in found)
        if problems:
            raise ConfigurationError(problems)

    def plugin(self, kind: type[T]) -> T:
        """The registered plugin of class ``kind`` (e.g. the built-in `FakeBackend`).

        Raises:
            NotFoundError: when none is registered.
        """
        for plugin in self._pm.get_plugins():
            if isinstance(plugin, kind):
                return plugin
        raise NotFoundError(f"no {kind.__name__} plugin is registered")

    # -- providers ----------------------------------------------------------------------------

    def provider(self, name: str) -> Provider:
        """The configured provider ``name``.

        Raises:
            NotFoundError: when the configuration has none of that name.
        """
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none"
            raise NotFoundError(
                f"no provider {name!r} is configured (configured: {known})"
            ) from None

    def add_provider(self, provider: Provider) -> Provider:
        """A provider dvcflow configures itself (the embedded file store), checked like any."""
        known = self.providers.get(provider.name)
        if known is not None:
            return known
        problems = self._pm.hook.dvcflow_check_provider(provider=provider)
        if problems is None or problems:
            msg = f"built-in provider {provider.name!r}: {problems or 'no plugin serves it'}"
            raise BackendError(msg, retryable=False)
        self.providers[provider.name] = provider
        return provider

    def provider_for(self, family: Family, *, procedure: str, agency: str) -> Provider:
        """The provider the configuration assigns to ``family`` for this procedure and agency.

        Raises:
            BackendError: not retryable, when the configuration assigns none.
        """
        name = self.routing.provider_name(family, procedure=procedure, agency=agency)
        if name is None:
            raise BackendError(
                f"no {family.value} provider is configured for procedure {procedure} "
                f'at {agency}: add [routing] {family.value} = "<provider>"',
                retryable=False,
            )
        return self.providers[name]

    # -- typed calls ------------------------------------------------------------------------------

    def _call(
        self,
        hook: Callable[..., Any],
        label: str,
        expected: type[T],
        provider: Provider,
        /,
        **arguments: Any,  # noqa: ANN401 - the hook's own arguments
    ) -> T:
        result = hook(provider=provider, **arguments)
        if result is None:
            raise BackendError(
                f"no plugin answered {label} for provider {provider.name!r} "
                f"(type {provider.type!r})",
                retryable=False,
            )
        if not isinstance(result, expected):
            raise BackendError(
                f"the plugin serving {provider.type!r} returned {type(result).__name__} from "
                f"{label}, not {expected.__name__}",
                retryable=False,
            )
        return result

    def create_payment(self, provider: Provider, request: PaymentRequest) -> PaymentLink:
        """A payment link from the provider."""
        hook = self._pm.hook.dvcflow_create_payment
        return self._call(hook, "create_payment", PaymentLink, provider, request=request)

    def verify_callback(
        self, provider: Provider, body: bytes, headers: Mapping[str, str]
    ) -> PaymentReport:
        """A callback authenticated and parsed by the provider's plugin."""
        hook = self._pm.hook.dvcflow_verify_callback
        return self._call(
            hook, "verify_callback", PaymentReport, provider, body=body, headers=headers
        )

    def callback_reply(
        self, provider: Provider, *, accepted: bool, error: str | None
    ) -> CallbackReply:
        """The response the provider expects to a callback."""
        hook = self._pm.hook.dvcflow_callback_reply
        return self._call(
            hook, "callback_reply", CallbackReply, provider, accepted=accepted, error=error
        )

    def query_payment(self, provider: Provider, query: PaymentQuery) -> PaymentReport:
        """Where a payment stands at the provider."""
        hook = self._pm.hook.dvcflow_query_payment
        return self._call(hook, "query_payment", PaymentReport, provider, query=query)

    def cancel_payment(self, provider: Provider, query: PaymentQuery) -> bool:
        """Cancel a payment link; whether the provider cancelled it."""
        hook = self._pm.hook.dvcflow_cancel_payment
        return self._call(hook, "cancel_payment", bool, provider, query=query)

    def refund_payment(self, provider: Provider, refund: RefundRequest) -> RefundResult:
        """Refund a paid fee."""
        hook = self._pm.hook.dvcflow_refund_payment
        return self._call(hook, "refund_payment", RefundResult, provider, refund=refund)

    def dispatch_delivery(self, provider: Provider, delivery: DeliveryRequest) -> DeliveryReceipt:
        """Send a result on its way."""
        hook = self._pm.hook.dvcflow_dispatch_delivery
        return self._call(hook, "dispatch_delivery", DeliveryReceipt, provider, delivery=delivery)

    def verify_delivery_callback(
        self, provider: Provider, body: bytes, headers: Mapping[str, str]
    ) -> DeliveryReport:
        """A courier's callback authenticated and parsed."""
        hook = self._pm.hook.dvcflow_verify_delivery_callback
        return self._call(
            hook, "verify_delivery_callback", DeliveryReport, provider, body=body, headers=headers
        )

    def track_delivery(
        self, provider: Provider, reference: str, provider_ref: str | None
    ) -> DeliveryReport:
        """Where a delivery stands at the courier."""
        hook = self._pm.hook.dvcflow_track_delivery
        return self._call(
            hook,
            "track_delivery",
            DeliveryReport,
            provider,
            reference=reference,
            provider_ref=provider_ref,
        )

    def cancel_delivery(self, provider: Provider, reference: str, provider_ref: str | None) -> bool:
        """Revoke a delivery before pickup; whether the courier did."""
        hook = self._pm.hook.dvcflow_cancel_delivery
        return self._call(
            hook, "cancel_delivery", bool, provider, reference=reference, provider_ref=provider_ref
        )

    def send_message(self, provider: Provider, message: Message) -> NotificationReceipt:
        """Send one rendered message."""
        hook = self._pm.hook.dvcflow_send_message
        return self._call(hook, "send_message", NotificationReceipt, provider, message=message)

    def parse_receipt(
        self, provider: Provider, body: bytes, headers: Mapping[str, str]
    ) -> MessageReceipt:
        """A delivery receipt authenticated and parsed."""
        hook = self._pm.hook.dvcflow_parse_receipt
        return self._call(
            hook, "parse_receipt", MessageReceipt, provider, body=body, headers=headers
        )

    def store_file(
        self, provider: Provider, content: bytes, *, media_type: str, name: str
    ) -> StoredFile:
        """Keep a file; its digest."""
        hook = self._pm.hook.dvcflow_store_file
        return self._call(
            hook,
            "store_file",
            StoredFile,
            provider,
            content=content,
            media_type=media_type,
            name=name,
        )

    def load_file(self, provider: Provider, digest: str) -> bytes:
        """A stored file's content."""
        hook = self._pm.hook.dvcflow_load_file
        return self._call(hook, "load_file", bytes, provider, digest=digest)

    def sign_document(self, provider: Provider, digest: str) -> DocumentSignature:
        """A signature over a stored file's digest."""
        hook = self._pm.hook.dvcflow_sign_document
        return self._call(hook, "sign_document", DocumentSignature, provider, digest=digest)

    def verify_document(
        self, provider: Provider, digest: str, signature: DocumentSignature
    ) -> bool:
        """Whether the signature over the digest is valid."""
        hook = self._pm.hook.dvcflow_verify_document
        return self._call(
            hook, "verify_document", bool, provider, digest=digest, signature=signature
        )

    # -- observers ------------------------------------------------------------------------------

    @property
    def observed(self) -> bool:
        """Whether any lifecycle observer is registered."""
        return self._observers

    def after_transition(self, record: TransitionRecord) -> None:
        """Tell every observer; one that raises is logged and the others still hear of it."""
        for impl in self._pm.hook.dvcflow_after_transition.get_hookimpls():
            arguments = {"transition": record} if "transition" in impl.argnames else {}
            try:
                impl.function(**arguments)
            except Exception:
                logger.exception(
                    "dvcflow observer failed",
                    extra={"plugin": impl.plugin_name, "dossier": record.dossier_id},
                )
