"""The content-addressed filesystem store: layout, dedupe, atomic writes, tampering, settings."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from dvcflow._backend_config import Routing
from dvcflow._backends import Provider, StoredFile
from dvcflow._hooks import Backends
from dvcflow.errors import BackendError, ConfigurationError, TamperedHistoryError
from dvcflow.plugins.filesystem import FilesystemStore, digest_of, path_of

CONTENT = "Trích lục khai sinh (bản sao)".encode()
DIGEST = "sha256:" + hashlib.sha256(CONTENT).hexdigest()


def provider(root: Path, **settings: object) -> Provider:
    return Provider("files", "filesystem", settings={"root": str(root), **settings})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store" / "files"


@pytest.fixture
def store() -> FilesystemStore:
    return FilesystemStore()


def put(store: FilesystemStore, root: Path, content: bytes = CONTENT, **settings) -> StoredFile:
    stored = store.dvcflow_store_file(
        provider=provider(root, **settings),
        content=content,
        media_type="application/pdf",
        name="trich-luc.pdf",
    )
    assert stored is not None
    return stored


def get(store: FilesystemStore, root: Path, digest: str = DIGEST) -> bytes:
    content = store.dvcflow_load_file(provider=provider(root), digest=digest)
    assert content is not None
    return content


def files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


class TestStore:
    def test_round_trip(self, store, root):
        """A stored file comes back byte for byte under its digest, with its metadata."""
        stored = put(store, root)
        assert stored == StoredFile(DIGEST, len(CONTENT), "application/pdf", "trich-luc.pdf")
        assert get(store, root) == CONTENT

    def test_layout(self, store, root):
        """The file is at <root>/sha256/<2 hex>/<62 hex>, read-only, in owner-only folders."""
        put(store, root)
        hexdigest = DIGEST.removeprefix("sha256:")
        path = root / "sha256" / hexdigest[:2] / hexdigest[2:]
        assert files(root) == [path]
        assert path_of(root, DIGEST) == path
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
        for folder in (root, root.parent, root / "sha256", path.parent):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

    def test_same_content_twice_is_one_copy(self, store, root):
        """Storing the same content again, under another name, keeps one file and one digest."""
        first = put(store, root)
        second = store.dvcflow_store_file(
            provider=provider(root), content=CONTENT, media_type="text/plain", name="other.txt"
        )
        assert second is not None
        assert second.digest == first.digest
        assert (second.media_type, second.name) == ("text/plain", "other.txt")
        assert len(files(root)) == 1

    def test_empty_content(self, store, root):
        """Empty content is a file like any other."""
        assert put(store, root, b"").digest == digest_of(b"")
        assert get(store, root, digest_of(b"")) == b""

    def test_max_bytes(self, store, root):
        """Content over settings.max_bytes is refused, not retryable; up to it is kept."""
        assert put(store, root, b"x" * 10, max_bytes=10).size == 10
        with pytest.raises(BackendError, match=r"11 bytes exceed settings.max_bytes \(10\)") as e:
            put(store, root, b"x" * 11, max_bytes=10)
        assert not e.value.retryable

    def test_content_must_be_bytes(self, store, root):
        """A str is refused, not retryable."""
        with pytest.raises(BackendError, match="content must be bytes") as caught:
            put(store, root, "text")
        assert not caught.value.retryable

    def test_disk_failure_is_retryable(self, store, tmp_path):
        """A root that cannot be created (a file in the way) is a retryable failure."""
        blocker = tmp_path / "blocker"
        blocker.write_bytes(b"")
        with pytest.raises(BackendError, match=f"cannot store {DIGEST}") as caught:
            put(store, blocker / "files")
        assert caught.value.retryable

    def test_no_temporary_files_are_left(self, store, root):
        """After storing, new and again, only the content files remain."""
        put(store, root)
        put(store, root)
        put(store, root, b"other")
        assert all(not path.name.startswith(".tmp-") for path in files(root))
        assert len(files(root)) == 2

    def test_without_hard_links(self, store, root, monkeypatch):
        """Where links are not supported, an atomic rename puts the file in place."""

        def no_link(*_args: object) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
        put(store, root)
        put(store, root)
        assert get(store, root) == CONTENT
        assert len(files(root)) == 1

    def test_a_damaged_copy_is_replaced_by_storing_again(self, store, root):
        """Storing content whose copy was damaged writes an intact copy in its place."""
        put(store, root)
        path = path_of(root, DIGEST)
        path.chmod(0o600)
        path.write_bytes(b"damaged")
        put(store, root)
        assert get(store, root) == CONTENT

    def test_other_types_are_not_answered(self, store):
        """Another provider type gets no answer."""
        other = Provider("x", "s3")
        assert (
            store.dvcflow_store_file(provider=other, content=b"", media_type="x", name="x") is None
        )
        assert store.dvcflow_load_file(provider=other, digest=DIGEST) is None
        assert store.dvcflow_check_provider(provider=other) is None


class TestConcurrency:
    def test_threads_store_the_same_content(self, store, root):
        """Sixteen threads storing the same content at once: one file, one digest."""
        content = os.urandom(256 * 1024)
        barrier = threading.Barrier(16)
        digests: list[str] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                barrier.wait()
                digests.append(put(store, root, content).digest)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert set(digests) == {digest_of(content)}
        assert len(digests) == 16
        assert files(root) == [path_of(root, digest_of(content))]
        assert get(store, root, digest_of(content)) == content

    def test_processes_store_the_same_content(self, store, root):
        """Four processes storing the same content fifty times each: one intact file."""
        script = textwrap.dedent(
            """
            import sys
            from dvcflow._backends import Provider
            from dvcflow.plugins.filesystem import FilesystemStore
            content = bytes(range(256)) * 4096
            provider = Provider("files", "filesystem", settings={"root": sys.argv[1]})
            store = FilesystemStore()
            for _ in range(50):
                stored = store.dvcflow_store_file(
                    provider=provider, content=content, media_type="x", name="x"
                )
            print(stored.digest)
            """
        )
        processes = [
            subprocess.Popen(  # noqa: S603 - our own interpreter and script
                [sys.executable, "-c", script, str(root)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [process.communicate(timeout=120) for process in processes]
        content = bytes(range(256)) * 4096
        assert [process.returncode for process in processes] == [0] * 4, outputs
        assert {out.strip() for out, _ in outputs} == {digest_of(content)}
        assert files(root) == [path_of(root, digest_of(content))]
        assert get(store, root, digest_of(content)) == content


class TestLoad:
    def test_nothing_stored(self, store, root):
        """A digest with nothing under it is a non-retryable error naming the digest."""
        put(store, root)
        missing = "sha256:" + "0" * 64
        with pytest.raises(BackendError, match=f"nothing is stored under {missing}") as caught:
            get(store, root, missing)
        assert not caught.value.retryable

    def test_tampered_content(self, store, root):
        """Bytes changed on disk are detected on load, naming the digest."""
        put(store, root)
        path = path_of(root, DIGEST)
        path.chmod(0o600)
        path.write_bytes(CONTENT.replace(b"khai", b"KHAI"))
        with pytest.raises(TamperedHistoryError, match=f"the file stored under {DIGEST} no"):
            get(store, root)

    def test_truncated_content(self, store, root):
        """A truncated file is detected too."""
        put(store, root)
        path = path_of(root, DIGEST)
        path.chmod(0o600)
        path.write_bytes(CONTENT[:-1])
        with pytest.raises(TamperedHistoryError):
            get(store, root)

    def test_unreadable_file_is_retryable(self, store, root, monkeypatch):
        """A read that fails for another reason (I/O, permissions) may be retried."""
        put(store, root)

        def failing(_self: Path) -> bytes:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(Path, "read_bytes", failing)
        with pytest.raises(BackendError, match=r"cannot read .*Input/output error") as caught:
            get(store, root)
        assert caught.value.retryable

    @pytest.mark.parametrize(
        "digest",
        [
            "sha256:../../../../etc/passwd",
            "sha256:" + "ab" * 31 + "/..",
            "sha256:" + "AB" * 32,
            "sha256:" + "ab" * 32 + "\n",
            "sha256:" + "ab" * 33,
            "/etc/passwd",
            "sha512:" + "ab" * 64,
            "ab" * 32,
            "",
        ],
    )
    def test_path_traversal_and_bad_digests_are_refused(self, store, root, digest):
        """Only 'sha256:' and 64 lower-case hex digits name a file: nothing else is opened."""
        with pytest.raises(BackendError, match="not a file digest") as caught:
            get(store, root, digest)
        assert not caught.value.retryable
        assert not root.exists()

    def test_a_long_bad_digest_is_cut_in_the_message(self, store, root):
        """The message shows at most 80 characters of what it was given."""
        with pytest.raises(BackendError) as caught:
            get(store, root, "x" * 10_000)
        assert len(str(caught.value)) < 200


class TestCheckProvider:
    def problems(self, **settings: object) -> list[str]:
        found = FilesystemStore().dvcflow_check_provider(
            provider=Provider("files", "filesystem", settings=settings)
        )
        assert found is not None
        return found

    def test_good(self, root, tmp_path):
        """A missing root (created later), or an owner-only folder, is fine."""
        assert self.problems(root=str(root)) == []
        assert self.problems(root=str(root), max_bytes=1) == []
        owned = tmp_path / "owned"
        owned.mkdir(mode=0o700)
        assert self.problems(root=str(owned)) == []

    def test_nothing_given(self):
        """No root is one problem naming it."""
        assert self.problems() == ["settings.root: required, the folder files are kept in"]

    @pytest.mark.parametrize(
        ("settings", "expected"),
        [
            ({"root": ""}, "settings.root: required"),
            ({"root": 7}, "settings.root: required"),
            ({"max_bytes": 0}, "settings.max_bytes: must be a positive whole number"),
            ({"max_bytes": "10"}, "settings.max_bytes: must be a positive whole number"),
            ({"max_bytes": True}, "settings.max_bytes: must be a positive whole number"),
            ({"folder": "x"}, "settings.folder: unknown setting (known: max_bytes, root)"),
        ],
    )
    def test_each_problem_names_the_setting(self, root, settings, expected):
        """A bad setting is one problem, naming it."""
        [problem] = self.problems(**{"root": str(root), **settings})
        assert problem.startswith(expected)

    def test_root_is_a_file(self, tmp_path):
        """A root that is a file is refused."""
        path = tmp_path / "file"
        path.write_bytes(b"")
        assert self.problems(root=str(path)) == ["settings.root: exists and is not a folder"]

    def test_root_open_to_others(self, tmp_path):
        """A root other users may enter is refused: results hold personal data."""
        path = tmp_path / "open"
        path.mkdir()
        path.chmod(0o755)
        assert self.problems(root=str(path)) == [
            "settings.root: is open to other users (mode 755); chmod 700 it"
        ]

    def test_through_the_facade(self, root):
        """Registered with pluggy, the store answers through the typed façade and its checks."""
        files_provider = provider(root)
        backends = Backends(
            providers={"files": files_provider},
            routing=Routing(),
            plugins=[FilesystemStore()],
            entry_points=False,
        )
        stored = backends.store_file(
            files_provider, CONTENT, media_type="application/pdf", name="kq.pdf"
        )
        assert stored.digest == DIGEST
        assert backends.load_file(files_provider, DIGEST) == CONTENT
        with pytest.raises(ConfigurationError) as caught:
            Backends(
                providers={"files": Provider("files", "filesystem")},
                routing=Routing(),
                plugins=[FilesystemStore()],
                entry_points=False,
                source="dvcflow.toml",
            )
        assert str(caught.value) == (
            "dvcflow.toml: providers.files: settings.root: required, the folder files are kept in"
        )
