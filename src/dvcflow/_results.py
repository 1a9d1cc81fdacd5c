"""Results as files: stored by content, signed where the procedure requires, downloaded by link.

``engine.results.attach`` keeps a result (or an attachment) through the storage provider and
records it with the dossier; ``engine.results.sign`` has the signing provider sign its digest.
``resolve`` with ``{"result": <digest>}`` of an attached file is then checked by the engine:
where the procedure requires a signed result, the file's signature must verify, whatever the
payload claims. An electronic result is fetched with a download link bound to the dossier and
its file, signed with the history key and expiring; the first download returns the result.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy.engine import Row

from dvcflow._backends import DocumentSignature, Family, Provider, StoredFile
from dvcflow._clock import to_utc
from dvcflow._dossier import Dossier
from dvcflow._snapshots import aware
from dvcflow._values import DeliveryMethod
from dvcflow.errors import (
    BackendError,
    ConcurrencyError,
    InvalidValueError,
    NotFoundError,
    RefusedError,
    SignatureError,
)

if TYPE_CHECKING:
    from dvcflow._engine import Engine

__all__ = ["Download", "FileRecord", "Results"]

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
"""How a stored file is named."""
MAX_BYTES = 50 * 1024 * 1024
"""The largest result or attachment accepted (50 MiB)."""
DEFAULT_STORE = "embedded-files"
"""The storage provider of an embedded database without one configured: a folder beside it."""


@attrs.frozen
class FileRecord:
    """A file of a dossier: its digest, what it is, and its signature if it has one."""

    digest: str
    role: str
    media_type: str
    name: str
    size: int
    provider: str
    signature: DocumentSignature | None
    created_at: dt.datetime


@attrs.frozen
class Download:
    """What a download link gives: the file and its content."""

    file: FileRecord
    content: bytes
    dossier_id: str
    first: bool
    """Whether this download returned the result (the first one did)."""


def _signature(data: Mapping[str, Any] | None) -> DocumentSignature | None:
    if not data:
        return None
    signed_at = data.get("signed_at")
    return DocumentSignature(
        data["algorithm"],
        data["key_id"],
        data["value"],
        None if signed_at is None else dt.datetime.fromisoformat(signed_at),
    )


def _record(row: Row[Any]) -> FileRecord:
    return FileRecord(
        row.digest,
        row.role,
        row.media_type,
        row.name,
        row.size,
        row.provider,
        _signature(row.signature),
        aware(row.created_at),
    )


def _unpaid(dossier: Dossier, action: str) -> None:
    """Never a result handed over while a fee is unpaid: not even a link to it."""
    if not dossier.fees_settled:
        owed = ", ".join(f"{f.kind.value} {f.outstanding}" for f in dossier.fees if f.outstanding)
        raise RefusedError(f"download {action}", ["fees_unpaid"], message=f"unpaid: {owed}")


def _token_parts(token: str) -> tuple[bytes, bytes] | None:
    """A link token's payload and MAC, or ``None`` when it is not a token."""
    encoded, dot, mac_text = token.partition(".")
    if not dot or not encoded or not mac_text:
        return None
    try:
        return _unb64(encoded), _unb64(mac_text)
    except (ValueError, UnicodeError):
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Results:
    """The engine's result files and download links: ``engine.results``."""

    def __init__(self, engine: Engine, key: bytes) -> None:
        self._engine = engine
        self._store = engine.store
        self._rows = engine.store.deliveries
        # A key of its own, derived from the history key: links cannot be turned into MACs.
        self._link_key = hmac.new(key, b"dvcflow download links", hashlib.sha256).digest()

    def _now(self, now: dt.datetime | None) -> dt.datetime:
        return to_utc(now if now is not None else self._engine.clock.now(), "now")

    def _dossier(self, ref: str) -> Row[Any]:
        with self._store.connect() as connection:
            row = self._store.dossier(connection, ref)
        if row is None:
            raise NotFoundError(f"no dossier {ref!r}")
        return row

    # -- files ----------------------------------------------------------------------------------

    def attach(  # noqa: PLR0913 - the file and what it is
        self,
        dossier: str,
        content: bytes,
        *,
        media_type: str,
        name: str,
        role: str = "result",
        now: dt.datetime | None = None,
    ) -> FileRecord:
        """Store a file for a dossier through the storage provider and record it.

        Raises:
            InvalidValueError: an empty or oversize file, or an unknown role.
            BackendError: the storage provider failed (or none is configured).
        """
        if not content:
            raise InvalidValueError("content", "is empty")
        if len(content) > MAX_BYTES:
            raise InvalidValueError("content", f"is larger than {MAX_BYTES} bytes")
        if role not in {"result", "attachment"}:
            raise InvalidValueError("role", "must be 'result' or 'attachment'")
        row = self._dossier(dossier)
        provider = self._storage(row)
        stored: StoredFile = self._engine.backends.store_file(
            provider, content, media_type=media_type, name=name
        )
        expected = "sha256:" + hashlib.sha256(content).hexdigest()
        if stored.digest != expected:
            msg = f"the storage provider named the file {stored.digest}, not {expected}"
            raise SignatureError(msg)
        at = self._now(now)
        try:
            with self._store.transaction() as connection:
                if self._rows.file(connection, row.id, stored.digest, role) is None:
                    self._rows.add_file(
                        connection,
                        dossier_id=row.id,
                        digest=stored.digest,
                        role=role,
                        media_type=media_type,
                        name=name,
                        size=stored.size,
                        provider=provider.name,
                        created_at=at,
                    )
        except ConcurrencyError:
            pass  # the same file attached at the same time: one record
        return self.file(row.id, stored.digest, role)

    def _provider(self, name: str) -> Provider:
        if name == DEFAULT_STORE:
            path = self._store.database_path
            if path is not None:
                root = str(path.with_name(path.name + ".files"))
                return self._engine.backends.add_provider(
                    Provider(name, "filesystem", {"root": root})
                )
        return self._engine.backends.provider(name)

    def _storage(self, row: Row[Any]) -> Provider:
        """The storage provider: the configured one, or a folder beside an embedded database."""
        routing = self._engine.backends.routing
        name = routing.provider_name(
            Family.STORAGE, procedure=row.procedure_code, agency=row.agency
        )
        if name is not None:
            return self._engine.backends.provider(name)
        path = self._store.database_path
        if path is None:
            msg = (
                'no storage provider is configured: add [providers.files] type = "filesystem" '
                'and [routing] storage = "files"'
            )
            raise BackendError(msg, retryable=False)
        return self._provider(DEFAULT_STORE)

    def file(self, dossier: str, digest: str, role: str = "result") -> FileRecord:
        """A dossier's recorded file.

        Raises:
            NotFoundError: the dossier has no such file.
        """
        row = self._dossier(dossier)
        with self._store.connect() as connection:
            found = self._rows.file(connection, row.id, digest, role)
        if found is None:
            raise NotFoundError(f"dossier {row.id} has no {role} {digest}")
        return _record(found)

    def files(self, dossier: str) -> list[FileRecord]:
        """A dossier's files, oldest first."""
        row = self._dossier(dossier)
        with self._store.connect() as connection:
            return [_record(f) for f in self._rows.files_of(connection, row.id)]

    def content(self, dossier: str, digest: str, role: str = "result") -> bytes:
        """A recorded file's content, from its storage provider (checked against its digest)."""
        record = self.file(dossier, digest, role)
        content = self._engine.backends.load_file(self._provider(record.provider), digest)
        if "sha256:" + hashlib.sha256(content).hexdigest() != digest:
            msg = f"the stored content of {digest} no longer has that digest"
            raise SignatureError(msg)
        return content

    # -- signatures ---------------------------------------------------------------------------

    def sign(self, dossier: str, digest: str) -> DocumentSignature:
        """Have the signing provider sign a result's digest; the signature is kept with it."""
        row = self._dossier(dossier)
        record = self.file(row.id, digest)
        provider = self._engine.backends.provider_for(
            Family.SIGNING, procedure=row.procedure_code, agency=row.agency
        )
        signature = self._engine.backends.sign_document(provider, record.digest)
        with self._store.transaction() as connection:
            found = self._rows.file(connection, row.id, digest, "result")
            if found is not None:
                self._rows.set_signature(
                    connection,
                    found.id,
                    {
                        "algorithm": signature.algorithm,
                        "key_id": signature.key_id,
                        "value": signature.value,
                        "signed_at": None
                        if signature.signed_at is None
                        else signature.signed_at.isoformat(),
                        "provider": provider.name,
                    },
                )
        return signature

    def verified(self, row: Row[Any], digest: object) -> bool | None:
        """Whether an attached result's signature verifies; ``None`` when it is not attached."""
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            return None
        with self._store.connect() as connection:
            found = self._rows.file(connection, row.id, digest, "result")
        if found is None:
            return None
        signature = _signature(found.signature)
        if signature is None:
            return False
        provider = self._engine.backends.provider(found.signature["provider"])
        return self._engine.backends.verify_document(provider, digest, signature)

    # -- download links ------------------------------------------------------------------------

    def link(self, dossier: str, *, now: dt.datetime | None = None) -> str:
        """A download link for a dossier's result, valid ``[delivery] link_ttl_hours``.

        Raises:
            NotFoundError: the dossier has no attached result.
        """
        row = self._dossier(dossier)
        value = self._engine.get(row.id).dossier
        if value.result_ref is None:
            raise NotFoundError(f"dossier {row.id} has no result yet")
        _unpaid(value, "link")
        self.file(row.id, value.result_ref)
        ttl = dt.timedelta(hours=self._engine.config.delivery.link_ttl_hours)
        expires = int((self._now(now) + ttl).timestamp())
        payload = json.dumps(
            {"d": row.id, "f": value.result_ref, "e": expires}, separators=(",", ":")
        ).encode()
        mac = hmac.new(self._link_key, payload, hashlib.sha256).digest()
        return f"{self._engine.config.delivery.download_url}{_b64(payload)}.{_b64(mac)}"

    def open(self, token: str, *, now: dt.datetime | None = None) -> Download:
        """The file a download link names; the first download returns an electronic result.

        ``token`` is the link or its last part.

        Raises:
            SignatureError: the link was altered or forged (security-logged).
            CallbackError: the link expired, or is not a link (security-logged).
        """
        at = self._now(now)
        token = token.rsplit("/", 1)[-1]
        raw = token.encode()
        parts = _token_parts(token)
        if parts is None:
            raise self._engine.intake.reject("download", "malformed", "not a link", raw, at)
        payload, mac = parts
        if not hmac.compare_digest(hmac.new(self._link_key, payload, hashlib.sha256).digest(), mac):
            self._engine.intake.log("download", "bad_signature", "link altered", raw, at)
            msg = "the download link was altered or forged"
            raise SignatureError(msg)
        data = json.loads(payload)
        if at.timestamp() > data["e"]:
            raise self._engine.intake.reject("download", "expired", "link expired", raw, at)
        dossier_id, digest = data["d"], data["f"]
        _unpaid(self._engine.get(dossier_id).dossier, "open")
        content = self.content(dossier_id, digest)
        first = self._returned(dossier_id, at)
        return Download(self.file(dossier_id, digest), content, dossier_id, first)

    def _returned(self, dossier_id: str, at: dt.datetime) -> bool:
        """Return an electronic result on its first download; whether this download did."""
        value = self._engine.get(dossier_id).dossier
        if value.delivery is not DeliveryMethod.ELECTRONIC or value.state != "result_ready":
            return False
        try:
            self._engine.fire_internal(
                dossier_id, "return_result", {}, command_id=f"download:{dossier_id}", now=at
            )
        except RefusedError:
            # Another download won the race: the result is returned once.
            return False
        return True
