"""Signatures made with the real ssh-keygen, checked with it: valid, wrong key, tampered, unreadable."""

from __future__ import annotations

from pathlib import Path

import pytest

from llorch.runtime.signatures import verify
from tests.runtime.signing import Key, make_key, sign

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Key, Key]:
    return make_key(tmp_path, "release"), make_key(tmp_path, "stranger")


def test_a_signature_by_a_trusted_key_verifies(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    release, stranger = keys
    signature = sign(release, DIGEST, tmp_path / "m.sig").read_bytes()
    verdict = verify(DIGEST, signature, [stranger.public_line, release.public_line])
    assert verdict.trusted and verdict.reason == "Verified"
    assert verdict.signer == "release@test" and "release@test" in verdict.message


def test_a_signature_by_another_key_is_not_trusted(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    release, stranger = keys
    signature = sign(stranger, DIGEST, tmp_path / "m.sig").read_bytes()
    verdict = verify(DIGEST, signature, [release.public_line])
    assert not verdict.trusted and verdict.reason == "UnknownSigner"


def test_a_signature_of_other_weights_does_not_verify(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    release, _ = keys
    signature = sign(release, OTHER, tmp_path / "m.sig").read_bytes()
    verdict = verify(DIGEST, signature, [release.public_line])
    assert not verdict.trusted and verdict.reason == "SignatureInvalid"
    assert DIGEST in verdict.message


def test_a_tampered_signature_does_not_verify(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    release, _ = keys
    armored = sign(release, DIGEST, tmp_path / "m.sig").read_text().splitlines()
    body = list(armored[1])
    body[-5] = "A" if body[-5] != "A" else "B"
    armored[1] = "".join(body)
    verdict = verify(DIGEST, ("\n".join(armored) + "\n").encode(), [release.public_line])
    assert not verdict.trusted


def test_something_that_is_no_signature_and_no_keys_say_so(keys: tuple[Key, Key]) -> None:
    release, _ = keys
    assert verify(DIGEST, b"not a signature", [release.public_line]).reason == "SignatureUnreadable"
    assert verify(DIGEST, b"-----BEGIN SSH SIGNATURE-----", []).reason == "NoTrustedKeys"
