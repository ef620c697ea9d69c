"""Detached OpenSSH signatures (`ssh-keygen -Y sign`) over a Model's digest, checked with the
`ssh-keygen` that every OpenSSH install carries, against the keys the server config trusts.

What is signed is the digest's text, `sha256:<64 hex>` with no line break, in the namespace
`llorch-model` (so a signature made for something else, a git commit say, never counts here).
Signing the digest rather than the file lets a user sign where the weights are not, and lets
llorch check with the hash it computes anyway.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NAMESPACE = "llorch-model"
SIGNATURE_MAX_BYTES = 64 * 1024
_TIMEOUT_SECONDS = 15.0
_ARMOR = b"-----BEGIN SSH SIGNATURE-----"


@dataclass(frozen=True)
class Verdict:
    trusted: bool
    reason: str
    """Verified, NoTrustedKeys, SignatureUnreadable, UnknownSigner, SignatureInvalid or NoVerifier."""
    message: str
    signer: str | None = None
    """The trusted key that made the signature: its comment, or its type when it has none."""


def message_for(digest: str) -> bytes:
    return digest.encode("ascii")


def verify(digest: str, signature: bytes, keys: Sequence[str]) -> Verdict:
    """Whether `signature` is a signature of `digest` by one of `keys` (OpenSSH public key lines)."""
    if not keys:
        return Verdict(
            False, "NoTrustedKeys", "the signature cannot be checked: trust.keys in the config is empty"
        )
    if not signature.lstrip().startswith(_ARMOR):
        return Verdict(False, "SignatureUnreadable", "the signature is not an `ssh-keygen -Y sign` signature")
    tool = shutil.which("ssh-keygen")
    if tool is None:
        return Verdict(
            False, "NoVerifier", "ssh-keygen (OpenSSH) is not installed, so no signature can be checked"
        )
    with tempfile.TemporaryDirectory(prefix="llorch-verify-") as tmp:
        folder = Path(tmp)
        allowed = folder / "allowed_signers"
        # One principal per key, so find-principals names the key that signed.
        allowed.write_text(
            "".join(f'key-{index} namespaces="{NAMESPACE}" {key}\n' for index, key in enumerate(keys))
        )
        sig = folder / "model.sig"
        sig.write_bytes(signature)
        found = _run([tool, "-Y", "find-principals", "-s", str(sig), "-f", str(allowed)], b"")
        if found is None:
            return Verdict(False, "NoVerifier", f"{tool} did not answer within {_TIMEOUT_SECONDS:.0f}s")
        if found.returncode != 0:
            return Verdict(False, "UnknownSigner", "the signature was not made by any key in trust.keys")
        principal = found.stdout.decode(errors="replace").split()[0].split(",")[0]
        checked = _run(
            [tool, "-Y", "verify", "-f", str(allowed), "-I", principal, "-n", NAMESPACE, "-s", str(sig)],
            message_for(digest),
        )
        if checked is None:
            return Verdict(False, "NoVerifier", f"{tool} did not answer within {_TIMEOUT_SECONDS:.0f}s")
        key = keys[int(principal.removeprefix("key-"))]
        signer = _describe(key)
        if checked.returncode != 0:
            return Verdict(
                False,
                "SignatureInvalid",
                f"the signature by {signer} does not match {digest}: the weights or the signature changed",
            )
        return Verdict(True, "Verified", f"signed by {signer}", signer)


def _describe(key: str) -> str:
    parts = key.split(None, 2)
    return parts[2] if len(parts) == 3 else parts[0]


def _run(argv: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return None
