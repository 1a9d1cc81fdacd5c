"""The reference Ed25519 document signer: RFC 8032 vectors, signing, verifying, settings."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import attrs
import pytest

from dvcflow import FrozenClock
from dvcflow._backend_config import Routing
from dvcflow._backends import DocumentSignature, Provider
from dvcflow._hooks import Backends
from dvcflow.errors import BackendError, ConfigurationError
from dvcflow.plugins.ed25519 import (
    ALGORITHM,
    Ed25519Signer,
    fingerprint,
    generate_key,
    public_key,
    sign,
    verify,
)

AT = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)
RFC8032 = [
    # RFC 8032, section 7.1: TEST 1, TEST 2 and TEST 3 (seed, public key, message, signature).
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        (
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ),
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        (
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ),
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        (
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
            "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"
        ),
    ),
]
SEED_HEX = RFC8032[1][0]
PUBLIC_B64 = "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="
DIGEST = "sha256:" + "ab" * 32
DIGEST_SIGNATURE = (
    "9NKM4kcHHf0LADY0sH/Kxk5qOeJz/3T4dinGXzr5qppB29PWwlvUrQSUENfY1ny6QVbQQNa6A4bN3jwrIHpiAA=="
)
"""TEST 2's key over the UTF-8 bytes of DIGEST, pinned: the scheme must not drift."""


def provider(*, seed: str | None = SEED_HEX, **settings: object) -> Provider:
    secrets = {} if seed is None else {"private_key": seed}
    return Provider("signer", "ed25519", settings=settings, secrets=secrets)


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(clock=FrozenClock(AT))


def signed(signer: Ed25519Signer, digest: str = DIGEST, **options: object) -> DocumentSignature:
    result = signer.dvcflow_sign_document(provider=provider(**options), digest=digest)
    assert result is not None
    return result


class TestPrimitives:
    @pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
    def test_rfc8032_vectors(self, seed, public, message, signature):
        """Seed -> public key -> signature, byte for byte as RFC 8032 publishes them."""
        raw_seed, raw_message = bytes.fromhex(seed), bytes.fromhex(message)
        assert public_key(raw_seed).hex() == public
        assert sign(raw_seed, raw_message).hex() == signature
        assert verify(bytes.fromhex(public), raw_message, bytes.fromhex(signature))
        assert not verify(bytes.fromhex(public), raw_message + b"\x00", bytes.fromhex(signature))

    def test_wrong_lengths_do_not_verify(self):
        """A public key or signature of the wrong length is simply not valid."""
        _, public, _, signature = RFC8032[0]
        assert not verify(bytes.fromhex(public)[:31], b"", bytes.fromhex(signature))
        assert not verify(bytes.fromhex(public), b"", bytes.fromhex(signature)[:63])

    def test_fingerprint(self):
        """The key id is the first 16 hex digits of the SHA-256 of the raw public key."""
        raw = bytes.fromhex(RFC8032[1][1])
        assert fingerprint(raw) == hashlib.sha256(raw).hexdigest()[:16] == "39f713d0a644253f"

    def test_generate_key(self):
        """A generated seed and public key belong together and differ each time."""
        seed_hex, public_b64 = generate_key()
        assert len(seed_hex) == 64
        assert base64.b64decode(public_b64) == public_key(bytes.fromhex(seed_hex))
        assert generate_key()[0] != seed_hex


class TestSign:
    def test_signs_the_digest_string(self, signer):
        """The signature covers the UTF-8 bytes of the digest; the pinned vector holds."""
        signature = signed(signer)
        assert signature == DocumentSignature(ALGORITHM, "39f713d0a644253f", DIGEST_SIGNATURE, AT)
        raw = base64.b64decode(signature.value)
        assert verify(base64.b64decode(PUBLIC_B64), DIGEST.encode(), raw)

    def test_seed_in_base64(self, signer):
        """The seed may be written in base64 as well as hex."""
        seed_b64 = base64.b64encode(bytes.fromhex(SEED_HEX)).decode()
        assert signed(signer, seed=seed_b64).value == DIGEST_SIGNATURE

    @pytest.mark.parametrize(
        "digest",
        ["sha256:" + "AB" * 32, "sha256:" + "ab" * 31, "md5:" + "ab" * 16, "", "sha256:../x"],
    )
    def test_only_file_digests(self, signer, digest):
        """Anything but a sha256 digest is refused, not retryable."""
        with pytest.raises(BackendError, match="can only sign a file digest") as caught:
            signed(signer, digest)
        assert not caught.value.retryable

    def test_verify_only_provider_cannot_sign(self, signer):
        """A provider without a private key refuses to sign, not retryable."""
        with pytest.raises(BackendError, match="only verifies") as caught:
            signed(signer, seed=None, trusted=[PUBLIC_B64])
        assert not caught.value.retryable

    def test_bad_seed_is_not_echoed(self, signer):
        """A seed that is not 32 bytes is refused without its value in the message."""
        bad = "00" * 31
        with pytest.raises(BackendError, match="not a 32-byte seed") as caught:
            signed(signer, seed=bad)
        assert bad not in str(caught.value)
        assert not caught.value.retryable

    def test_other_types_are_not_answered(self, signer):
        """Another provider type gets no answer from this plugin."""
        other = Provider("x", "pki")
        assert signer.dvcflow_sign_document(provider=other, digest=DIGEST) is None
        assert (
            signer.dvcflow_verify_document(provider=other, digest=DIGEST, signature=signed(signer))
            is None
        )
        assert signer.dvcflow_check_provider(provider=other) is None


class TestVerify:
    def check(self, signer, signature, *, digest=DIGEST, **options):
        answer = signer.dvcflow_verify_document(
            provider=provider(**options), digest=digest, signature=signature
        )
        assert answer is not None
        return answer

    def test_round_trip(self, signer):
        """A signature made by the provider verifies with it."""
        assert self.check(signer, signed(signer))

    def test_altered_digest_fails(self, signer):
        """The signature of one digest does not verify another."""
        assert not self.check(signer, signed(signer), digest="sha256:" + "ac" + "ab" * 31)

    def test_wrong_key_fails(self, signer):
        """A signature by another key, claiming this key's id, does not verify."""
        other_seed, _ = generate_key()
        forged = attrs.evolve(signed(signer), value=signed(signer, seed=other_seed).value)
        assert not self.check(signer, forged)

    def test_untrusted_key_fails(self, signer):
        """A valid signature by a key the provider does not know is not accepted."""
        other_seed, _ = generate_key()
        assert not self.check(signer, signed(signer, seed=other_seed))

    def test_trusted_key(self, signer):
        """A signature by a key in settings.trusted verifies, also without a key of its own."""
        other_seed, other_public = generate_key()
        signature = signed(signer, seed=other_seed)
        assert self.check(signer, signature, trusted=[other_public])
        assert self.check(signer, signature, seed=None, trusted=[other_public])

    @pytest.mark.parametrize(
        "change",
        [
            {"algorithm": "rsa-sha256"},
            {"value": "not base64!"},
            {"value": base64.b64encode(b"short").decode()},
            {"key_id": "0000000000000000"},
        ],
    )
    def test_unusable_signatures_fail(self, signer, change):
        """Another algorithm, an undecodable or short value, an unknown key: not valid."""
        assert not self.check(signer, attrs.evolve(signed(signer), **change))

    def test_malformed_trusted_entries_are_skipped(self, signer):
        """An unusable trusted entry does not break verification by the others."""
        assert self.check(signer, signed(signer), trusted=["???", 7, PUBLIC_B64])
        assert self.check(signer, signed(signer), trusted="not a list")


class TestCheckProvider:
    def problems(self, **options):
        found = Ed25519Signer().dvcflow_check_provider(provider=provider(**options))
        assert found is not None
        return found

    def test_good(self):
        """A key, with or without trusted keys, is fine; trusted keys alone too."""
        assert self.problems() == []
        assert self.problems(trusted=[PUBLIC_B64]) == []
        assert self.problems(seed=None, trusted=[PUBLIC_B64]) == []

    def test_nothing_given(self):
        """No key and no trusted keys is one problem naming the secret."""
        assert self.problems(seed=None) == [
            (
                "secrets.private_key: required (or settings.trusted, for a provider that only "
                "verifies), the environment variable holding the key's seed"
            )
        ]

    @pytest.mark.parametrize(
        "seed", ["", "00" * 31, "zz" * 32, base64.b64encode(b"x" * 31).decode()]
    )
    def test_bad_seed(self, seed):
        """A seed that is not 32 bytes of hex or base64 is a problem that never shows it."""
        [problem] = self.problems(seed=seed)
        assert problem.startswith("secrets.private_key: must be a 32-byte Ed25519 seed")
        assert (seed not in problem) or not seed

    def test_bad_trusted(self):
        """Each unusable trusted key is a problem naming its position; unknown settings too."""
        assert self.problems(trusted=[PUBLIC_B64, "abc", 3], keys=1) == [
            "settings.keys: unknown setting (known: trusted)",
            "settings.trusted[1]: must be a base64 Ed25519 public key (32 bytes)",
            "settings.trusted[2]: must be a base64 Ed25519 public key (32 bytes)",
        ]
        assert self.problems(trusted=PUBLIC_B64) == [
            "settings.trusted: must be a list of base64 Ed25519 public keys"
        ]


class TestFacade:
    def test_sign_and_verify_through_backends(self):
        """Registered with pluggy, the plugin signs and verifies through the typed façade."""
        signer = provider()
        backends = Backends(
            providers={"signer": signer},
            routing=Routing(),
            plugins=[Ed25519Signer(clock=FrozenClock(AT))],
            entry_points=False,
        )
        signature = backends.sign_document(signer, DIGEST)
        assert signature.value == DIGEST_SIGNATURE
        assert backends.verify_document(signer, DIGEST, signature) is True
        assert backends.verify_document(signer, "sha256:" + "00" * 32, signature) is False

    def test_problems_stop_the_facade(self):
        """A provider with a bad seed stops the façade at start, the seed not shown."""
        with pytest.raises(ConfigurationError) as caught:
            Backends(
                providers={"signer": provider(seed="00" * 31)},
                routing=Routing(),
                plugins=[Ed25519Signer()],
                entry_points=False,
                source="dvcflow.toml",
            )
        assert str(caught.value) == (
            "dvcflow.toml: providers.signer: secrets.private_key: must be a 32-byte Ed25519 "
            "seed in hex (64 digits) or base64"
        )
