"""Download the public DCPv2 model release zip, unpack its checkpoints safely and convert them.

The zip is downloaded into a private temp folder that is always removed, so an interrupted
download or a bad zip leaves nothing behind; the models are published by ``convert`` atomically.
The default source is the public Google Drive file (via ``gdown``, which handles Drive's
confirmation page); ``url`` overrides it (a Drive link, or plain http(s)/file URLs, streamed with
``urllib`` and checked against Content-Length).
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from deepcream.convert import Reporter, convert
from deepcream.errors import DeepcreamError, ModelError
from deepcream.models import models_dir
from deepcream.options import MODES

log = logging.getLogger(__name__)

DRIVE_FILE_ID = "1IMwzqZUuRnTv5jcuKdvZx-RZweknww5x"
DRIVE_URL = f"https://drive.google.com/file/d/{DRIVE_FILE_ID}"
#: Refuse to unpack more than this (the real release is ~0.3 GB): guards against zip bombs.
MAX_UNPACKED_BYTES = 4 << 30
#: Default cap on a download (the real release zip is ~275 MB); ``--max-download-mb`` changes it.
MAX_DOWNLOAD_BYTES = 1 << 30
_CHUNK = 1 << 20
# The files of a checkpoint; anything else in the zip (readmes, __MACOSX) is skipped.
_CHECKPOINT_FILE = re.compile(r"^(checkpoint|.+\.index|.+\.data-\d{5}-of-\d{5}|.+\.meta)$")


def _is_drive(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    return host in ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


def download(url: str | None, target: Path, report: Reporter | None = None, *,
             max_bytes: int = MAX_DOWNLOAD_BYTES) -> None:
    """Download the release zip to ``target`` (default: the public Drive file), at most
    ``max_bytes`` (http(s)/file URLs stop there; a Drive download is checked once done,
    since gdown cannot be stopped midway)."""
    say = report or log.info
    if url is None or _is_drive(url):
        _gdown(url, target, say)
        if target.stat().st_size > max_bytes:
            raise ModelError(_too_big(url or DRIVE_URL, target.stat().st_size, max_bytes))
    else:
        _http_download(url, target, say, max_bytes)


def _too_big(url: str, size: int, max_bytes: int) -> str:
    return (f"download of {url} is over {size / 1e6:,.0f} MB, more than the limit of "
            f"{max_bytes / 1e6:,.0f} MB (the DCPv2 release is ~275 MB; raise it with "
            "--max-download-mb)")


def _gdown(url: str | None, target: Path, say: Reporter) -> None:
    import gdown

    say(f"downloading the DCPv2 model release from {url or DRIVE_URL}")
    try:
        if url is None:
            result = gdown.download(id=DRIVE_FILE_ID, output=str(target), quiet=False)
        else:
            result = gdown.download(url, output=str(target), quiet=False, fuzzy=True)
    except Exception as exc:  # gdown raises requests' and its own errors; all mean "no file"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"download from Google Drive failed ({reason}); download {DRIVE_URL} "
                         "in a browser and run: deepcream convert THE_ZIP_OR_UNZIPPED_FOLDER") from None
    if not result or not target.is_file():
        raise ModelError(f"download from Google Drive failed; download {DRIVE_URL} in a browser "
                         "and run: deepcream convert THE_ZIP_OR_UNZIPPED_FOLDER")


def _http_download(url: str, target: Path, say: Reporter, max_bytes: int) -> None:
    from tqdm import tqdm

    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise DeepcreamError(f"unsupported URL {url!r}: use http(s):// or file://")
    say(f"downloading {url}")
    received = 0
    expected: int | None = None
    if scheme == "file":
        local = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if local.exists() and not local.is_file():
            raise ModelError(f"{url} is not a regular file (a folder, FIFO or device)")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise ModelError(_too_big(url, expected, max_bytes))
            with tqdm(total=expected, unit="B", unit_scale=True, disable=None, leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    if received > max_bytes:
                        raise ModelError(_too_big(url, received, max_bytes))
    except urllib.error.HTTPError as exc:
        raise ModelError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise ModelError(f"cannot download {url}: {exc.reason}") from None
    except (http.client.HTTPException, OSError) as exc:
        raise ModelError(f"download of {url} interrupted after {received} bytes: "
                         f"{exc or type(exc).__name__}") from None
    if expected is not None and received != expected:
        raise ModelError(f"download of {url} interrupted: got {received} of {expected} bytes")


def describe_file(path: Path) -> str:
    """What a file that should have been a zip archive is, in a few words."""
    try:
        if not path.is_file():
            return "not a regular file" if path.exists() else "missing"
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    text = head.lstrip().lower()
    if size == 0:
        return "an empty file"
    if head.startswith(b"PK"):
        return f"a damaged or truncated zip archive ({size:,} bytes)"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<!--")) or b"<html" in text:
        return f"an HTML page ({size:,} bytes; a download that returned a web page?)"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")):
        return "a compressed archive of another kind (gzip, bzip2, xz, 7z or rar), not a zip"
    return f"not a zip archive ({size:,} bytes)"


def _member_path(info: zipfile.ZipInfo, archive: str) -> PurePosixPath:
    """The member's path, refusing anything that could land outside the extraction folder."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if (name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in path.parts
            or stat.S_ISLNK(info.external_attr >> 16)):
        raise ModelError(f"{archive}: unsafe entry {info.filename!r} (absolute path, '..' or "
                         "symlink); refusing to unpack it")
    return path


def extract_release(zip_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                    with_meta: bool = False) -> Path:
    """Unpack the checkpoint files of a DCPv2 release zip to ``out_dir/<mode>/`` and return
    ``out_dir``. Only ``bar``/``mosaic`` checkpoint files are written, to paths built here (so
    member names cannot escape ``out_dir``); ``.meta`` graphs only ``with_meta`` (for --verify).
    """
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    archive = zip_path.name
    if not zip_path.is_file() or not zipfile.is_zipfile(zip_path):
        raise ModelError(f"{archive} is {describe_file(zip_path)}, so not the DCPv2 model "
                         "release")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            chosen: list[tuple[zipfile.ZipInfo, str, str]] = []
            roots: dict[str, set[PurePosixPath]] = {}
            names = []
            for info in zf.infolist():
                path = _member_path(info, archive)
                names.append(info.filename)
                if info.is_dir() or "__MACOSX" in path.parts or len(path.parts) < 2:
                    continue
                mode = path.parts[-2]
                if mode not in MODES or not _CHECKPOINT_FILE.match(path.name):
                    continue
                if path.name.endswith(".meta") and not with_meta:
                    continue
                roots.setdefault(mode, set()).add(path.parent)
                chosen.append((info, mode, path.name))
            has_index = {mode for _, mode, name in chosen if name.endswith(".index")}
            if not has_index:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                raise ModelError(f"{archive} is not the DCPv2 model release: it has no bar/ or "
                                 f"mosaic/ checkpoint (it holds: {shown or 'nothing'})")
            for mode, parents in roots.items():
                if len(parents) > 1:
                    raise ModelError(f"{archive} holds several {mode}/ folders "
                                     f"({', '.join(sorted(map(str, parents)))}); expected one")
            total = sum(info.file_size for info, _, _ in chosen)
            if total > MAX_UNPACKED_BYTES:
                raise ModelError(f"{archive}: checkpoint files unpack to {total / 1e9:.1f} GB, "
                                 "far more than the DCPv2 release; refusing")
            for info, mode, name in chosen:
                target = out_dir / mode / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ModelError(f"{archive} is a damaged zip archive: {exc}") from None
    except NotImplementedError as exc:  # e.g. an unsupported compression method
        raise ModelError(f"{archive}: cannot unpack: {exc}") from None
    return out_dir


def _check_targets(dest: Path, force: bool) -> None:
    if force:
        return
    for mode in MODES:
        target = dest / f"{mode}.onnx"
        if target.exists():
            raise DeepcreamError(f"{target} already exists: pass --force to replace it")


def install_zip(zip_path: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None, *,
                force: bool = False, verify: bool = False, source_label: str | None = None,
                work_dir: str | os.PathLike[str] | None = None,
                report: Reporter | None = None) -> list[Path]:
    """Unpack a release zip to a temp folder and convert it into ``dest``."""
    dest_dir = models_dir(dest)
    _check_targets(dest_dir, force)
    with tempfile.TemporaryDirectory(prefix="deepcream-unzip-", dir=work_dir) as tmp:
        release = extract_release(zip_path, Path(tmp) / "release", with_meta=verify)
        return convert(release, dest_dir, force=force, verify=verify,
                       source_label=source_label or str(Path(zip_path).resolve()), report=report)


def fetch_model(dest: str | os.PathLike[str] | None = None, url: str | None = None, *,
                force: bool = False, verify: bool = False,
                work_dir: str | os.PathLike[str] | None = None,
                report: Reporter | None = None,
                max_bytes: int = MAX_DOWNLOAD_BYTES) -> list[Path]:
    """Download the release zip (default: the public Drive file), unpack and convert it into
    ``dest`` (default: the models folder). Returns the model paths written.

    All downloading and unpacking happens in a temp folder (inside ``work_dir`` if given) that
    is removed whatever happens. A download over ``max_bytes`` is stopped and refused.
    """
    dest_dir = models_dir(dest)
    _check_targets(dest_dir, force)  # before a long download, not after
    with tempfile.TemporaryDirectory(prefix="deepcream-fetch-", dir=work_dir) as tmp:
        zip_path = Path(tmp) / "dcpv2-model.zip"
        download(url, zip_path, report, max_bytes=max_bytes)
        return install_zip(zip_path, dest_dir, force=force, verify=verify,
                           source_label=url or DRIVE_URL, work_dir=tmp, report=report)
