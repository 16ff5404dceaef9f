"""`deepcream fetch-model` end to end against a loopback HTTP server serving fixture zips."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deepcream.cli import main

ROOT = "09-11-2019 DCPv2 model"


@pytest.fixture(scope="module")
def zips(dcpv2_release: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Zips to serve: the release (bar only, stored, to keep it quick), and bad ones."""
    folder = tmp_path_factory.mktemp("zips")
    release = folder / "release.zip"
    with zipfile.ZipFile(release, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{ROOT}/readme.txt", "DCPv2 models\n")
        for f in sorted((dcpv2_release / "bar").iterdir()):
            if f.name != "reference.npz":
                zf.write(f, f"{ROOT}/bar/{f.name}")
        zf.writestr(f"__MACOSX/{ROOT}/bar/._Train_775000.index", b"junk")
    other = folder / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("holiday/photo.jpg", b"\xff\xd8not really")
        zf.writestr("bar.txt", "a bar")
    evil = folder / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("bar/Train_1.index", b"x")
        zf.writestr("../../evil.index", b"pwned")
    page = folder / "page.html"
    page.write_text("<html><body>Google Drive - Virus scan warning</body></html>")
    return {"release.zip": release, "other.zip": other, "evil.zip": evil, "page.html": page}


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, Path] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        name = self.path.lstrip("/")
        cut = name == "cut.zip"
        path = self.files.get("release.zip" if cut else name)
        if path is None:
            self.send_error(404, "Not Found")
            return
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(path, "rb") as f:
            if cut:  # promise the whole file, send half, hang up
                self.wfile.write(f.read(size // 2))
                self.wfile.flush()
                self.close_connection = True
                return
            shutil.copyfileobj(f, self.wfile, 1 << 20)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(zips: dict[str, Path]) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"files": zips})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    """The temp folder fetch-model downloads and unpacks in, to check it is left empty."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_fetch_model_downloads_unpacks_and_converts(server: str, work: Path, tmp_path: Path,
                                                    converted_models: Path, capsys) -> None:
    dest = tmp_path / "models"
    url = f"{server}/release.zip"
    assert main(["fetch-model", "--url", url, "-o", str(dest)]) == 0
    assert "installed" in capsys.readouterr().out
    assert sorted(p.name for p in dest.iterdir()) == ["bar.onnx", "manifest.json"]
    entry = json.loads((dest / "manifest.json").read_text())["models"]["bar"]
    expected = json.loads((converted_models / "manifest.json").read_text())["models"]["bar"]
    assert entry["sha256"] == expected["sha256"]  # same weights, same model bytes
    assert entry["sha256"] == hashlib.sha256((dest / "bar.onnx").read_bytes()).hexdigest()
    assert entry["source"] == url and entry["source_step"] == 775000
    assert list(work.iterdir()) == []
    # Again without --force: refused before downloading, the model untouched.
    assert main(["fetch-model", "--url", url, "-o", str(dest)]) == 2
    assert "already exists: pass --force" in capsys.readouterr().err


@pytest.mark.parametrize("name, message", [
    ("cut.zip", r"download of .*/cut\.zip interrupted: got \d+ of \d+ bytes"),
    ("missing.zip", r"download of .*/missing\.zip failed: HTTP 404"),
    ("page.html", r"is an HTML page \(\d+ bytes; a download that returned a web page\?\), so "
                  r"not the DCPv2 model release"),
    ("other.zip", r"is not the DCPv2 model release: it has no bar/ or mosaic/ checkpoint "
                  r"\(it holds: holiday/photo\.jpg, bar\.txt\)"),
    ("evil.zip", r"unsafe entry '\.\./\.\./evil\.index'"),
])
def test_bad_downloads_leave_nothing_behind(name: str, message: str, server: str, work: Path,
                                            tmp_path: Path, capsys) -> None:
    import re

    dest = tmp_path / "models"
    assert main(["fetch-model", "--url", f"{server}/{name}", "-o", str(dest)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("deepcream: error: "), err
    assert re.search(message, err), err
    assert not dest.exists()
    assert list(work.iterdir()) == []  # no partial download or unpacked files
    assert not list(tmp_path.rglob("evil.index"))


def test_convert_accepts_the_release_zip(zips: dict[str, Path], work: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    assert main(["convert", str(zips["release.zip"]), "-o", str(dest)]) == 0
    assert (dest / "bar.onnx").stat().st_size > 1_000_000
    assert list(work.iterdir()) == []
    assert main(["convert", str(zips["other.zip"]), "-o", str(tmp_path / "m2")]) == 2
    assert not (tmp_path / "m2").exists()


def test_unsupported_url_scheme(tmp_path: Path, capsys) -> None:
    assert main(["fetch-model", "--url", "ftp://example.invalid/x.zip", "-o",
                 str(tmp_path / "m")]) == 2
    assert "unsupported URL" in capsys.readouterr().err
