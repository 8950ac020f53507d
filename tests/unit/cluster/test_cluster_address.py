"""`--ray` addresses: the accepted forms, and a clear error for anything else."""

from __future__ import annotations

import socket

import pytest

from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestrator.cluster.address import AddressError, parse_ray_address
from llenergymeasure.orchestrator.cluster.ray_dispatcher import check_reachable


@pytest.mark.parametrize(
    ("text", "kind", "init"),
    [
        ("auto", "auto", "auto"),
        ("local", "local", None),
        ("ray://head-node:10001", "client", "ray://head-node:10001"),
        ("10.0.0.5:6379", "gcs", "10.0.0.5:6379"),
        (" ray://10.0.0.5:10001 ", "client", "ray://10.0.0.5:10001"),
    ],
)
def test_accepted_address_forms(text: str, kind: str, init: str | None) -> None:
    address = parse_ray_address(text)
    assert address.kind == kind
    assert address.init_address == init


@pytest.mark.parametrize("text", ["", "head", "http://head:10001", "ray://head", "head:0", "head:70000", "a b:1"])
def test_malformed_address_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(AddressError, match="auto, local, ray://host:port or host:port"):
        parse_ray_address(text)


def test_unreachable_address_is_a_config_error_with_a_fix() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError) as e:
        check_reachable(parse_ray_address(f"ray://127.0.0.1:{port}"), timeout_s=2)
    assert e.value.exit_code == 2
    text = e.value.render()
    assert f"127.0.0.1:{port}" in text and "fix:" in text and "--ray" in text


def test_reachable_address_passes_the_check() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        check_reachable(parse_ray_address(f"127.0.0.1:{s.getsockname()[1]}"), timeout_s=2)
