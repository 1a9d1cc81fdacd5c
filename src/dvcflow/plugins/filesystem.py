"""A content-addressed file store in a local folder: results and attachments, by SHA-256.

Configure it as a provider of type ``"filesystem"``::

    [providers.files]
    type = "filesystem"
    settings = { root = "/var/lib/dvcflow/files", max_bytes = 52428800 }

    [routing]
    storage = "files"

A file's content is kept once, at ``<root>/sha256/<first 2 hex digits>/<other 62>``, however
many times and under however many names it is stored. The store keeps bytes only: the media
type and name come back in the `StoredFile` and belong to whoever refers to the file (the
dossier's history), because one content may be stored under several names. Files are written
to a temporary file in their final folder, flushed to disk, then linked into place, so a
reader never sees half a file and concurrent writers of the same content (threads or
processes) end with one complete copy. ``docs/delivery.md`` describes the layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import tempfile
from pathlib import Path

from dvcflow._backends import Provider, StoredFile
from dvcflow.errors import BackendError, TamperedHistoryError
from dvcflow.hookspecs import hookimpl

__all__ = ["DIGEST_PATTERN", "FILESYSTEM", "FilesystemStore", "digest_of", "path_of"]

logger = logging.getLogger("dvcflow.filesystem")

FILESYSTEM = "filesystem"
"""The provider type this plugin serves."""

DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}\Z")
"""A digest as dvcflow writes it: ``sha256:`` and 64 lower-case hex digits, nothing else."""

SETTINGS = ("max_bytes", "root")
TEMPORARY_PREFIX = ".tmp-"
"""Temporary files start with this; one left by a crashed writer is safe to delete."""
FOLDER_MODE = 0o700
FILE_MODE = 0o400
"""Stored files are never rewritten in place: read-only, for the owner only."""
_CHUNK = 1 << 20


def digest_of(content: bytes) -> str:
    """The digest of ``content``: ``"sha256:<64 hex digits>"``."""
    return f"sha256:{hashlib.sha256(content).hexdigest()}"


def path_of(root: Path, digest: str) -> Path:
    """Where the content of ``digest`` lives under ``root``.

    Raises:
        BackendError: not retryable, when ``digest`` is not ``sha256:`` and 64 lower-case hex
            digits (so no digest can name a path outside ``root``).
    """
    if not DIGEST_PATTERN.match(digest):
        shown = digest[:80] if isinstance(digest, str) else type(digest).__name__
        raise BackendError(
            f"not a file digest: {shown!r} (expected 'sha256:' and 64 lower-case hex digits)",
            retryable=False,
        )
    hexdigest = digest.removeprefix("sha256:")
    return root / "sha256" / hexdigest[:2] / hexdigest[2:]


def _hash_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            sha.update(chunk)
    return f"sha256:{sha.hexdigest()}"


def _make_folder(path: Path) -> None:
    """Create ``path`` and its missing parents, each owner-only."""
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another writer made it first
            folder.mkdir(mode=FOLDER_MODE)
            folder.chmod(FOLDER_MODE)  # mkdir's mode is filtered by the umask


def _sync_folder(path: Path) -> None:
    """Make a new directory entry durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FilesystemStore:
    """Files kept by content under ``settings.root``: stored once, verified when loaded."""

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The plugin serves type ``filesystem``."""
        return [FILESYSTEM]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        """Every problem with the provider's settings, each naming the setting."""
        if provider.type != FILESYSTEM:
            return None
        return _problems(provider)

    @hookimpl
    def dvcflow_store_file(
        self, provider: Provider, content: bytes, media_type: str, name: str
    ) -> StoredFile | None:
        """Keep ``content`` under its digest; storing it again keeps the one copy.

        Raises:
            BackendError: not retryable when the content is larger than ``settings.max_bytes``
                or not bytes; retryable when the disk fails (full, unmounted, not writable).
        """
        if provider.type != FILESYSTEM:
            return None
        where = f"filesystem store {provider.name!r}"
        if not isinstance(content, bytes):
            raise BackendError(f"{where}: content must be bytes", retryable=False)
        limit = provider.setting("max_bytes")
        if limit is not None and len(content) > limit:
            raise BackendError(
                f"{where}: {len(content)} bytes exceed settings.max_bytes ({limit})",
                retryable=False,
            )
        digest = digest_of(content)
        path = path_of(_root(provider), digest)
        try:
            _write(path, content, digest)
        except OSError as exc:
            raise BackendError(f"{where}: cannot store {digest}: {exc.strerror}") from None
        logger.debug("stored %s (%d bytes)", digest, len(content))
        return StoredFile(digest=digest, size=len(content), media_type=media_type, name=name)

    @hookimpl
    def dvcflow_load_file(self, provider: Provider, digest: str) -> bytes | None:
        """The content stored under ``digest``, checked against it.

        Raises:
            BackendError: not retryable when ``digest`` is not a digest or nothing is stored
                under it; retryable when the disk fails.
            TamperedHistoryError: what is stored no longer has that digest.
        """
        if provider.type != FILESYSTEM:
            return None
        where = f"filesystem store {provider.name!r}"
        path = path_of(_root(provider), digest)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise BackendError(
                f"{where}: nothing is stored under {digest}", retryable=False
            ) from None
        except OSError as exc:
            raise BackendError(f"{where}: cannot read {digest}: {exc.strerror}") from None
        if digest_of(content) != digest:
            raise TamperedHistoryError(
                f"{where}: the file stored under {digest} no longer has that digest "
                "(altered or damaged on disk)"
            )
        return content


def _root(provider: Provider) -> Path:
    return Path(str(provider.setting("root"))).expanduser()


def _write(path: Path, content: bytes, digest: str) -> None:
    """Put ``content`` at ``path`` atomically; keep an intact copy already there."""
    _make_folder(path.parent)
    descriptor, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).chmod(FILE_MODE)
        try:
            # A link, unlike a rename, never replaces: the first complete copy stays.
            os.link(temporary, path)
        except FileExistsError:
            if _hash_file(path) != digest:
                logger.warning("replacing a damaged copy of %s", digest)
                Path(temporary).replace(path)
        except OSError:
            # Filesystems without hard links: a rename is atomic too, and the copies are equal.
            Path(temporary).replace(path)
        _sync_folder(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(temporary).unlink()


# -- settings -------------------------------------------------------------------------------------


def _problems(provider: Provider) -> list[str]:
    problems = [
        f"settings.{name}: unknown setting (known: {', '.join(SETTINGS)})"
        for name in sorted(provider.settings)
        if name not in SETTINGS
    ]
    root = provider.setting("root")
    if not isinstance(root, str) or not root.strip():
        problems.append("settings.root: required, the folder files are kept in")
    else:
        problems.extend(_root_problems(Path(root).expanduser()))
    limit = provider.setting("max_bytes")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.append("settings.max_bytes: must be a positive whole number of bytes")
    return problems


def _root_problems(root: Path) -> list[str]:
    """An existing root must be a folder only its owner can enter (results are personal)."""
    try:
        status = root.stat()
    except FileNotFoundError:
        return []  # created, owner-only, at the first store
    except OSError as exc:
        return [f"settings.root: cannot be read ({exc.strerror})"]
    if not stat.S_ISDIR(status.st_mode):
        return ["settings.root: exists and is not a folder"]
    if status.st_mode & 0o077:
        mode = stat.S_IMODE(status.st_mode)
        return [f"settings.root: is open to other users (mode {mode:o}); chmod 700 it"]
    return []
