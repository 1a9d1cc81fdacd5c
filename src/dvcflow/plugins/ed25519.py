"""A reference document signer: an Ed25519 key held by the portal, and the keys it trusts.

Configure it as a provider of type ``"ed25519"``::

    [providers.signer]
    type = "ed25519"
    settings = { trusted = ["<base64 public key of a key signatures are still accepted from>"] }
    secrets = { private_key = "DVCFLOW_SIGNING_KEY" }

    [routing]
    signing = "signer"

The secret is the key's 32-byte seed, in hex (64 digits) or base64; `generate_key` makes one.
A signature covers the UTF-8 bytes of the digest string (``"sha256:<64 hex digits>"``) of a
stored file, so signing never needs the file. ``key_id`` is `fingerprint` of the public key.
A provider with ``settings.trusted`` and no ``private_key`` only verifies.

This is where a PKI plugin takes over. A signer whose key is certified by a certification
authority (a CA-issued certificate, the Government Cipher Committee's official-duty signatures)
or held by a remote signing service is a plugin serving its own provider type with the same two
hooks: ``dvcflow_sign_document`` sends the digest (never the document) to the key holder and
returns a `DocumentSignature` naming its algorithm, the certificate (``key_id``) and the
signature, with the signing time the service attests; ``dvcflow_verify_document`` checks the
signature, the certificate chain up to the trusted roots and the certificate's revocation
status at ``signed_at``. ``docs/delivery.md`` says more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import secrets as _random
from collections.abc import Iterator

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dvcflow._backends import DocumentSignature, Provider
from dvcflow._clock import Clock, SystemClock
from dvcflow.errors import BackendError
from dvcflow.hookspecs import hookimpl

__all__ = [
    "ALGORITHM",
    "ED25519",
    "Ed25519Signer",
    "fingerprint",
    "generate_key",
    "public_key",
    "sign",
    "verify",
]

logger = logging.getLogger("dvcflow.ed25519")

ED25519 = "ed25519"
"""The provider type this plugin serves."""
ALGORITHM = "ed25519"
"""`DocumentSignature.algorithm` of its signatures (pure Ed25519, RFC 8032)."""

SETTINGS = ("trusted",)
SEED_BYTES = 32
PUBLIC_BYTES = 32
SIGNATURE_BYTES = 64
FINGERPRINT_HEX = 16
"""``key_id`` is this many hex digits of the SHA-256 of the raw public key (64 bits)."""
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_HEX_SEED = re.compile(r"[0-9a-fA-F]{64}\Z")


# -- keys and signatures (pure) ---------------------------------------------------------------


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _seed(text: str) -> bytes | None:
    """A seed written in hex or base64; ``None`` when it is neither, or not 32 bytes."""
    text = text.strip()
    raw = bytes.fromhex(text) if _HEX_SEED.match(text) else _base64(text)
    return raw if raw is not None and len(raw) == SEED_BYTES else None


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key(seed: bytes) -> bytes:
    """The raw 32-byte public key of a 32-byte seed (RFC 8032, section 5.1.5)."""
    return _public_bytes(Ed25519PrivateKey.from_private_bytes(seed).public_key())


def fingerprint(public: bytes) -> str:
    """A public key's short name: the first 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(public).hexdigest()[:FINGERPRINT_HEX]


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``message`` by the key of ``seed``."""
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public``."""
    if len(public) != PUBLIC_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def generate_key() -> tuple[str, str]:
    """A new key for set-up: its seed in hex (the secret) and its public key in base64.

    Put the seed in the environment variable ``secrets.private_key`` names; give the public
    key to whoever verifies the portal's signatures (their ``settings.trusted``).
    """
    seed = _random.token_bytes(SEED_BYTES)
    return seed.hex(), base64.b64encode(public_key(seed)).decode()


# -- the plugin -----------------------------------------------------------------------------------


class Ed25519Signer:
    """Signs stored files' digests with the provider's Ed25519 key; verifies them.

    Args:
        clock: where ``signed_at`` comes from (the system clock by default).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The plugin serves type ``ed25519``."""
        return [ED25519]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        """Every problem with the provider's key and trusted keys, each naming the setting."""
        if provider.type != ED25519:
            return None
        return _problems(provider)

    @hookimpl
    def dvcflow_sign_document(self, provider: Provider, digest: str) -> DocumentSignature | None:
        """Sign the UTF-8 bytes of ``digest`` with the provider's key.

        Raises:
            BackendError: not retryable, when ``digest`` is not a file digest or the provider
                has no usable ``private_key``.
        """
        if provider.type != ED25519:
            return None
        where = f"ed25519 signer {provider.name!r}"
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise BackendError(
                f"{where}: can only sign a file digest ('sha256:' and 64 lower-case hex digits)",
                retryable=False,
            )
        if not provider.secrets.get("private_key"):
            raise BackendError(
                f"{where}: has no secrets.private_key, it only verifies", retryable=False
            )
        seed = _seed(provider.secret("private_key"))
        if seed is None:
            raise BackendError(
                f"{where}: secrets.private_key is not a 32-byte seed in hex or base64",
                retryable=False,
            )
        key_id = fingerprint(public_key(seed))
        value = base64.b64encode(sign(seed, digest.encode("utf-8"))).decode()
        logger.debug("signed %s with key %s", digest, key_id)
        return DocumentSignature(ALGORITHM, key_id, value, self._clock.now())

    @hookimpl
    def dvcflow_verify_document(
        self, provider: Provider, digest: str, signature: DocumentSignature
    ) -> bool | None:
        """Whether ``signature`` signs ``digest`` with the provider's own or a trusted key.

        A signature of another algorithm, by a key not trusted, or not decodable is not valid.
        """
        if provider.type != ED25519:
            return None
        if signature.algorithm != ALGORITHM or not isinstance(digest, str):
            return False
        public = dict(_known_keys(provider)).get(signature.key_id)
        raw = _base64(signature.value) if isinstance(signature.value, str) else None
        if public is None or raw is None:
            return False
        return verify(public, digest.encode("utf-8"), raw)


def _known_keys(provider: Provider) -> Iterator[tuple[str, bytes]]:
    """``(key_id, public key)`` of the provider's own key and of each usable trusted key."""
    text = provider.secrets.get("private_key")
    seed = _seed(text) if text else None
    if seed is not None:
        own = public_key(seed)
        yield fingerprint(own), own
    trusted = provider.setting("trusted", [])
    for item in trusted if isinstance(trusted, list) else []:
        raw = _base64(item) if isinstance(item, str) else None
        if raw is not None and len(raw) == PUBLIC_BYTES:
            yield fingerprint(raw), raw


# -- settings -------------------------------------------------------------------------------------


def _problems(provider: Provider) -> list[str]:
    problems = [
        f"settings.{name}: unknown setting (known: {', '.join(SETTINGS)})"
        for name in sorted(provider.settings)
        if name not in SETTINGS
    ]
    trusted = provider.setting("trusted", [])
    if not isinstance(trusted, list):
        problems.append("settings.trusted: must be a list of base64 Ed25519 public keys")
        trusted = []
    for index, item in enumerate(trusted):
        raw = _base64(item) if isinstance(item, str) else None
        if raw is None or len(raw) != PUBLIC_BYTES:
            problems.append(
                f"settings.trusted[{index}]: must be a base64 Ed25519 public key (32 bytes)"
            )
    text = provider.secrets.get("private_key")
    if text is None and not trusted:
        problems.append(
            "secrets.private_key: required (or settings.trusted, for a provider that only "
            "verifies), the environment variable holding the key's seed"
        )
    elif text is not None and _seed(text) is None:
        # Never echo it: it is (or looks like) the key itself.
        problems.append(
            "secrets.private_key: must be a 32-byte Ed25519 seed in hex (64 digits) or base64"
        )
    return problems
