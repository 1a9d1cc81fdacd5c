"""A test-only plugin: notifications POSTed as JSON to an HTTP peer, keyed by Idempotency-Key.

Found by the worker processes of the tests through the ``dvcflow`` entry-point group (this
folder holds its dist-info and goes on their PYTHONPATH), as a third-party plugin would be.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from dvcflow import BackendError, Message, NotificationReceipt, Provider, hookimpl

TYPE = "webhook_peer"


class WebhookPeer:
    """Provider type ``webhook_peer``: ``settings.url`` receives every notification."""

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        return [TYPE]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        if provider.type != TYPE:
            return None
        return [] if provider.setting("url") else ["settings.url: is required"]

    @hookimpl
    def dvcflow_send_message(
        self, provider: Provider, message: Message
    ) -> NotificationReceipt | None:
        if provider.type != TYPE:
            return None
        body = json.dumps({"event": message.event, "reference": message.reference})
        request = urllib.request.Request(  # noqa: S310 - a loopback URL from the test
            provider.setting("url"),
            data=body.encode(),
            headers={"Idempotency-Key": message.key, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                answer = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError) as exc:
            raise BackendError(f"webhook peer unreachable: {exc}") from exc
        return NotificationReceipt(answer["id"], "delivered")


plugin = WebhookPeer()
