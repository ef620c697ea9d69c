"""Keys and signatures made with the real `ssh-keygen`, as a user makes them."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from llorch.runtime.signatures import NAMESPACE


@dataclass(frozen=True)
class Key:
    private: Path
    public_line: str


def make_key(folder: Path, name: str) -> Key:
    private = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test", "-f", str(private)], check=True
    )
    return Key(private, (folder / f"{name}.pub").read_text().strip())


def sign(key: Key, digest: str, out: Path) -> Path:
    """`printf %s sha256:... > d; ssh-keygen -Y sign -f KEY -n llorch-model d` → d.sig, moved to `out`."""
    message = out.with_suffix(".digest")
    message.write_text(digest)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(key.private), "-n", NAMESPACE, str(message)],
        check=True,
        capture_output=True,
    )
    message.with_name(message.name + ".sig").replace(out)
    return out
