"""Model snapshots fetched once on the host with the real huggingface_hub client, retried and explained.

``snapshot_download`` into the host cache (the containers then read it
read-only, offline). Transient answers — 429 and 5xx, a dropped connection —
are retried with exponential backoff (tenacity); the failures a user must act
on become a `HubFetchError` naming the repo, the revision and the fix: a gated
repo without a token that has access, a revision that does not exist, a repo
that does not exist or is private. ``HF_ENDPOINT`` (a mirror, or a test server)
is honoured by the client itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from llenergymeasure.orchestrator.retry import RetryPolicy, is_transient_download_error


class HubFetchError(Exception):
    """A snapshot could not be fetched for a reason the user must fix (`fix` says how)."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def retrying(attempts: int, sleep: Callable[[float], None]) -> RetryPolicy:
    """The hub downloads' retry: transient failures (`is_transient_download_error`) with exponential backoff."""
    return RetryPolicy(attempts=attempts, sleep=sleep)


@contextmanager
def hub_errors(repo_id: str, revision: str | None, *, what: str) -> Iterator[None]:
    """Translate the hub client's errors a user must act on into `HubFetchError` (`what`: model or dataset)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    rev = revision or "main"
    try:
        yield
    except GatedRepoError as e:
        raise HubFetchError(
            f"{repo_id} (revision {rev}) is gated: the hub refused the download without a token that has access",
            f"accept the {what}'s terms on its hub page, then set HF_TOKEN on this host ({type(e).__name__})",
        ) from e
    except RevisionNotFoundError as e:
        raise HubFetchError(
            f"revision {rev} of {repo_id} does not exist on the hub",
            f"use an existing branch, tag or commit of {repo_id}",
        ) from e
    except EntryNotFoundError as e:
        raise HubFetchError(
            f"{repo_id} (revision {rev}) has no file {getattr(e, 'filename', None) or str(e).splitlines()[0]}",
            f"check the revision of {repo_id}: the file must exist at that commit",
        ) from e
    except RepositoryNotFoundError as e:
        raise HubFetchError(
            f"{repo_id} (revision {rev}) is not on the hub, or is private",
            "check the id, or set HF_TOKEN for a private repo"
            + (", or pass a local directory" if what == "model" else ""),
        ) from e


def fetch_with_hub(
    repo_id: str,
    cache_dir: Path,
    revision: str | None = None,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """``snapshot_download(repo_id, revision)`` into `cache_dir`; raises `HubFetchError` for what a user must fix.

    `endpoint` / `token`: the hub (``HF_ENDPOINT``) and token (``HF_TOKEN``) of the caller's environment;
    None lets huggingface_hub read its own defaults.
    """
    from huggingface_hub import snapshot_download

    with hub_errors(repo_id, revision, what="model"):
        path = retrying(attempts, sleep).call(
            lambda: snapshot_download(
                repo_id=repo_id, revision=revision, cache_dir=str(cache_dir), endpoint=endpoint, token=token
            ),
            is_transient=is_transient_download_error,
            what=f"fetching {repo_id}",
        )
    return Path(path)
