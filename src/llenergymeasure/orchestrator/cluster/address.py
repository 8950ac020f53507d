"""The ``--ray`` / ``runners.ray.address`` value: which Ray cluster a study runs on.

Accepted forms:
- ``auto``: the cluster this machine belongs to (``ray start`` ran here; RAY_ADDRESS honoured by Ray);
- ``local``: a throwaway single-node Ray instance started for this study and stopped after it;
- ``ray://host:port``: a remote cluster through the Ray Client server (default port 10001);
- ``host:port``: the GCS address of a cluster this machine can join as a driver (the head itself).
Anything else is an `AddressError` naming the accepted forms (a config error, exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

AddressKind = Literal["auto", "local", "client", "gcs"]

_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")

ACCEPTED_FORMS = "auto, local, ray://host:port or host:port"


class AddressError(ValueError):
    """A Ray address that is none of the accepted forms."""


@dataclass(frozen=True)
class RayAddress:
    """A parsed Ray address; `init_address` is what ``ray.init(address=...)`` receives (None = start a local one)."""

    kind: AddressKind
    text: str

    @property
    def init_address(self) -> str | None:
        return None if self.kind == "local" else self.text

    def describe(self) -> str:
        if self.kind == "local":
            return "a local Ray instance on this machine"
        if self.kind == "auto":
            return "the Ray cluster of this machine (auto)"
        return f"the Ray cluster at {self.text}"


def parse_ray_address(value: str) -> RayAddress:
    """`RayAddress` from user text; `AddressError` with the accepted forms otherwise."""
    text = value.strip()
    if text in ("auto", "local"):
        return RayAddress(kind=text, text=text)  # type: ignore[arg-type]  # narrowed by the test above
    rest, kind = text, "gcs"
    if text.startswith("ray://"):
        rest, kind = text[len("ray://") :], "client"
    elif "://" in text:
        raise AddressError(f"unsupported scheme in Ray address {value!r}; fix: use {ACCEPTED_FORMS}")
    match = _HOST_PORT.match(rest)
    if match is None or not 0 < int(match.group("port")) < 65536:
        raise AddressError(f"not a Ray address: {value!r}; fix: use {ACCEPTED_FORMS} (e.g. ray://head-node:10001)")
    return RayAddress(kind=kind, text=text)  # type: ignore[arg-type]
