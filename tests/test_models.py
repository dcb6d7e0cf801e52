"""``netwarden model list|pull`` against a local imitation of the Hugging Face hub.

Two real HTTP servers on 127.0.0.1 play the hub and its CDN the way
huggingface_hub 2.x sees them: ``HEAD /{repo}/resolve/{rev}/{file}`` answers
302 to the CDN (another origin) with ``X-Repo-Commit``, ``X-Linked-Etag`` (the
SHA-256 of the LFS content) and ``X-Linked-Size``; the CDN serves the bytes and
honours ``Range`` so an interrupted pull continues.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import gguf
import numpy as np
import pytest

from agent import models
from agent.settings import ModelSettings, Settings
from tools.errors import UsageError

REPO = "bartowski/THUDM_GLM-Z1-9B-0414-GGUF"
FILE = "THUDM_GLM-Z1-9B-0414-Q4_K_M.gguf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Hub:
    """What the fake hub serves and what it was asked."""

    files: dict[str, bytes] = field(default_factory=dict)  # "repo/file" -> bytes
    corrupt: bool = False  # CDN flips a byte: content no longer matches the etag
    lfs: bool = True  # False: answer like a small git file, with no SHA-256
    cdn_gets: list[str | None] = field(default_factory=list)  # Range of each GET
    url: str = ""
    cdn_url: str = ""


def _tiny_gguf(path: Path) -> bytes:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("netwarden test model")
    writer.add_tensor("token_embd.weight", np.arange(4096, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _hub_handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class HubHandler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self._resolve()

        def do_GET(self) -> None:
            self._resolve()

        def _resolve(self) -> None:
            parts = unquote(self.path.split("?")[0]).strip("/").split("/")
            key = "/".join([*parts[:2], *parts[4:]])
            if len(parts) < 5 or parts[2] != "resolve" or key not in hub.files:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = hub.files[key]
            digest = hashlib.sha256(data).hexdigest()
            self.send_response(302)
            self.send_header("Location", f"{hub.cdn_url}/blobs/{digest}")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", '"0f1e2d3c4b5a69788796a5b4c3d2e1f001234567"')
            if hub.lfs:
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return None

    return HubHandler


def _cdn_handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class CdnHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            digest = self.path.split("?")[0].rsplit("/", 1)[-1]
            blobs = {hashlib.sha256(d).hexdigest(): d for d in hub.files.values()}
            if digest not in blobs:
                self.send_error(404)
                return
            data = bytearray(blobs[digest])
            if hub.corrupt:
                data[len(data) // 2] ^= 0xFF
            hub.cdn_gets.append(self.headers.get("Range"))
            self._send(bytes(data), self.headers.get("Range"))

        def _send(self, data: bytes, byte_range: str | None) -> None:
            start = int(byte_range.split("=")[1].split("-")[0]) if byte_range else 0
            self.send_response(206 if start else 200)
            if start:
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"
                )
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])

        def log_message(self, *_args: object) -> None:
            return None

    return CdnHandler


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _tiny_gguf(tmp_path_factory.mktemp("gguf") / FILE)


@pytest.fixture
def hub(model_bytes: bytes) -> Iterator[Hub]:
    state = Hub(files={f"{REPO}/{FILE}": model_bytes})
    servers = [
        ThreadingHTTPServer(("127.0.0.1", 0), _hub_handler(state)),
        ThreadingHTTPServer(("127.0.0.1", 0), _cdn_handler(state)),
    ]
    state.url, state.cdn_url = (f"http://127.0.0.1:{s.server_port}" for s in servers)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield state
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- pull


def test_pull_downloads_and_verifies(
    hub: Hub, tmp_path: Path, model_bytes: bytes
) -> None:
    seen: list[tuple[int, int | None]] = []
    path = models.pull(
        "glm-z1-9b-0414",
        "q4_k_m",
        tmp_path,
        endpoint=hub.url,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert path == tmp_path / FILE
    assert path.read_bytes() == model_bytes
    assert gguf.GGUFReader(path).tensors[0].name == "token_embd.weight"
    assert seen[-1] == (len(model_bytes), len(model_bytes))
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE]  # no .part left


def test_checksum_mismatch_leaves_nothing(hub: Hub, tmp_path: Path) -> None:
    hub.corrupt = True
    with pytest.raises(models.ModelError, match="does not match") as caught:
        models.pull("GLM-Z1-9B-0414", None, tmp_path, endpoint=hub.url)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_second_pull_downloads_nothing(hub: Hub, tmp_path: Path) -> None:
    first = models.pull("GLM-Z1-9B-0414", "Q4_K_M", tmp_path, endpoint=hub.url)
    stamp = first.stat().st_mtime_ns
    second = models.pull("GLM-Z1-9B-0414", "Q4_K_M", tmp_path, endpoint=hub.url)
    assert second == first
    assert second.stat().st_mtime_ns == stamp
    assert len(hub.cdn_gets) == 1


def test_damaged_file_is_replaced(hub: Hub, tmp_path: Path, model_bytes: bytes) -> None:
    (tmp_path / FILE).write_bytes(b"not the model")
    path = models.pull("GLM-Z1-9B-0414", None, tmp_path, endpoint=hub.url)
    assert path.read_bytes() == model_bytes


def test_interrupted_pull_continues(
    hub: Hub, tmp_path: Path, model_bytes: bytes
) -> None:
    digest = hashlib.sha256(model_bytes).hexdigest()
    half = len(model_bytes) // 2
    (tmp_path / f".{FILE}.{digest[:16]}.part").write_bytes(model_bytes[:half])
    path = models.pull("GLM-Z1-9B-0414", None, tmp_path, endpoint=hub.url)
    assert path.read_bytes() == model_bytes
    assert hub.cdn_gets == [f"bytes={half}-"]


def test_unknown_model_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown model 'GLM-5'") as caught:
        models.pull("GLM-5", None, tmp_path)
    for name in (
        "GLM-Z1-9B-0414",
        "GLM-Z1-32B-0414",
        "GLM-4-9B-0414",
        "GLM-4-32B-0414",
    ):
        assert name in str(caught.value)


def test_unknown_quant_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no quant 'Q2_K'") as caught:
        models.pull("GLM-4-9B-0414", "Q2_K", tmp_path)
    assert "Q4_K_M, Q5_K_M, Q6_K, Q8_0" in str(caught.value)


def test_embedded_model_is_not_pulled(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ships with netwarden"):
        models.pull("smollm2-135m-instruct", None, tmp_path)


def test_missing_file_on_hub(hub: Hub, tmp_path: Path) -> None:
    hub.files.clear()
    with pytest.raises(models.ModelError, match="not found at"):
        models.pull("GLM-Z1-9B-0414", None, tmp_path, endpoint=hub.url)


def test_file_without_sha256_is_refused(hub: Hub, tmp_path: Path) -> None:
    hub.lfs = False
    with pytest.raises(models.ModelError, match="gave no SHA-256"):
        models.pull("GLM-Z1-9B-0414", None, tmp_path, endpoint=hub.url)
    assert hub.cdn_gets == []


def test_destination_not_a_directory(hub: Hub, tmp_path: Path) -> None:
    blocker = tmp_path / "models"
    blocker.write_text("a file where the models directory should be")
    with pytest.raises(models.ModelError, match=FILE):
        models.pull("GLM-Z1-9B-0414", None, blocker, endpoint=hub.url)


def test_offline_mode_is_one_line(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models.hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(models.ModelError, match="HF_HUB_OFFLINE is set"):
        models.pull("GLM-Z1-9B-0414", None, tmp_path, endpoint=hub.url)


def test_unreachable_hub_is_one_line(closed_port: int, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(models.ModelError, match="cannot reach the model hub") as caught:
        models.pull("GLM-Z1-9B-0414", None, tmp_path, endpoint=endpoint)
    assert endpoint in str(caught.value)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# --- list


def test_list_marks_embedded_as_active_by_default(tmp_path: Path) -> None:
    settings = Settings(model=ModelSettings(models_dir=tmp_path))
    entries = models.list_models(settings)
    embedded = entries[0]
    assert embedded.kind == "embedded"
    assert embedded.installed
    assert embedded.active
    assert embedded.path is not None
    assert embedded.path.suffix == ".gguf"
    assert not any(e.installed for e in entries if e.kind == "catalogue")
    assert len([e for e in entries if e.kind == "catalogue"]) == 16


def test_list_shows_configured_and_stray_models(tmp_path: Path) -> None:
    (tmp_path / FILE).write_bytes(b"x" * 10)
    (tmp_path / "other.gguf").write_bytes(b"y")
    settings = Settings(model=ModelSettings(models_dir=tmp_path, path=tmp_path / FILE))
    by_path = {e.path: e for e in models.list_models(settings) if e.installed}
    pulled = by_path[tmp_path / FILE]
    assert (pulled.name, pulled.quant, pulled.active, pulled.size_bytes) == (
        "GLM-Z1-9B-0414",
        "Q4_K_M",
        True,
        10,
    )
    assert by_path[tmp_path / "other.gguf"].kind == "local"
    assert sum(e.active for e in by_path.values()) == 1


# --- the command line, as a user runs it


def _netwarden(
    args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def cli_env(tmp_path: Path, hub: Hub) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[model]\nmodels_dir = "{tmp_path / "models"}"\n')
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HF_", "NETWARDEN_"))
    }
    return {
        **env,
        "NETWARDEN_CONFIG": str(config),
        "HF_ENDPOINT": hub.url,
        "COLUMNS": "200",
    }


def test_cli_pull_then_list(cli_env: dict[str, str], tmp_path: Path) -> None:
    pulled = _netwarden(
        ["model", "pull", "GLM-Z1-9B-0414", "--quant", "Q4_K_M"], cli_env
    )
    assert pulled.returncode == 0, pulled.stderr
    path = tmp_path / "models" / FILE
    assert path.is_file()
    assert f'path = "{path}"' in pulled.stdout
    assert f"--model {path}" in pulled.stdout

    listed = _netwarden(["model", "list"], cli_env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    embedded = next(line for line in lines if "SmolLM2-135M-Instruct" in line)
    assert embedded.split()[0] == "*"  # still the active model
    pulled_row = next(line for line in lines if str(path) in line)
    assert pulled_row.split()[:2] == ["GLM-Z1-9B-0414", "Q4_K_M"]


def test_cli_list_json(cli_env: dict[str, str]) -> None:
    listed = _netwarden(["model", "list", "--json"], cli_env)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    active = [m for m in document["models"] if m["active"]]
    assert [m["name"] for m in active] == ["SmolLM2-135M-Instruct"]


def test_cli_errors_are_one_line(cli_env: dict[str, str], closed_port: int) -> None:
    unknown = _netwarden(["model", "pull", "nope"], cli_env)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "error: unknown model 'nope'; known models: GLM-Z1-9B-0414, GLM-Z1-32B-0414,"
        " GLM-4-9B-0414, GLM-4-32B-0414"
    ]
    offline = {**cli_env, "HF_ENDPOINT": f"http://127.0.0.1:{closed_port}"}
    failed = _netwarden(["model", "pull", "GLM-4-9B-0414"], offline)
    assert failed.returncode == 1
    assert len(failed.stderr.strip().splitlines()) == 1
    assert "cannot reach the model hub" in failed.stderr
