"""An applicant's notification preferences, as given at intake and kept with their personal data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dvcflow._backends import MessageChannel
from dvcflow._templates import LOCALES
from dvcflow.errors import InvalidValueError

__all__ = ["APPLICANT_CHANNELS", "check_preferences"]

APPLICANT_CHANNELS = (MessageChannel.EMAIL, MessageChannel.SMS, MessageChannel.ZALO)
"""The channels an applicant may opt into."""


def check_preferences(value: object) -> dict[str, Any]:
    """An intake's notification preferences, as stored: opted-in channels and a locale.

    ``{"channels": ["email", "sms"], "locale": "vi"}``; either key may be left out.

    Raises:
        InvalidValueError: naming what is wrong.
    """
    if not isinstance(value, Mapping):
        raise InvalidValueError("notify", "must be a mapping of channels and locale")
    unknown = sorted(set(value) - {"channels", "locale"})
    if unknown:
        raise InvalidValueError("notify", f"unknown key {unknown[0]!r}")
    preferences: dict[str, Any] = {}
    if "channels" in value:
        channels = value["channels"]
        names = {channel.value for channel in APPLICANT_CHANNELS}
        if not isinstance(channels, list | tuple | set | frozenset) or not all(
            isinstance(c, str) and c in names for c in channels
        ):
            raise InvalidValueError("notify.channels", f"lists channels among {sorted(names)}")
        preferences["channels"] = sorted(set(channels))
    if "locale" in value:
        if value["locale"] not in LOCALES:
            raise InvalidValueError("notify.locale", f"must be one of {', '.join(LOCALES)}")
        preferences["locale"] = value["locale"]
    return preferences
