"""Slow and early-refused clients (issue 11 item 4), with raw sockets on 127.0.0.1: a header
timeout, a minimum upload rate after a grace period, and 503 before any body byte is read
when the server cannot take the request. Every socket has a timeout: no test can hang."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path

import httpx
from test_server import GREEN, bar_image, client, png, scene

from deepcream.server import Settings
from deepcream.server.runner import serve_in_thread

UPLOAD_HEAD = (b"POST /v1/decensor HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
               b"boundary=b\r\nContent-Length: %d\r\n\r\n")


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def read_answer(sock: socket.socket) -> tuple[int, dict, bool]:
    """Status, JSON body and whether the server closed the connection after it."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(4096)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < length and (chunk := sock.recv(4096)):
        body += chunk
    try:
        closed = sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        closed = False
    return status, json.loads(body[:length]), closed


def trickle(sock: socket.socket, data: bytes, every_s: float) -> int:
    """Send ``data`` one byte at a time; returns how many bytes went before the server hung up
    (the caller then reads its answer)."""
    sent = 0
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
        if _readable(sock):  # the server answered (and will close)
            break
        time.sleep(every_s)
    return sent


def _readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_slow_headers_get_408_and_the_connection_closes() -> None:
    settings = Settings(engine="classical", header_timeout_s=0.5)
    head = UPLOAD_HEAD % 1000
    with serve_in_thread(settings) as url:
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=20) as sock:
            sent = trickle(sock, head, 0.1)  # 10 B/s: the headers would take ~10 s
            status, body, closed = read_answer(sock)
        assert status == 408 and body["error"] == "request_timeout"
        assert "headers not received within 0.5 s" in body["message"]
        assert closed and sent < len(head)
        # a connection that sends nothing at all is closed the same way
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=20) as idle:
            status, _, closed = read_answer(idle)
        assert status == 408 and closed
        with client(url) as c:  # normal requests are unaffected, keep-alive included
            for _ in range(2):
                assert c.post("/v1/decensor", files={"image": ("a.png", png(bar_image()[0]))}
                              ).status_code == 200
            time.sleep(0.8)  # an idle keep-alive connection is closed, and reopened by httpx
            assert c.get("/healthz").status_code == 200


def test_trickling_upload_is_dropped_after_the_grace_period() -> None:
    settings = Settings(engine="classical", min_upload_bytes_per_s=1000, upload_grace_s=0.5,
                        upload_timeout_s=60)
    with serve_in_thread(settings) as url:
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=20) as sock:
            sock.sendall(UPLOAD_HEAD % 100_000 + b"--b")
            sent = trickle(sock, b"x" * 200, 0.05)  # ~20 B/s, far under 1000 B/s
            status, body, _ = read_answer(sock)
        assert status == 408 and "upload too slow" in body["message"]
        assert sent < 200
        with client(url) as c:  # a fast upload of the same server is fine
            assert c.post("/v1/decensor", files={"image": ("a.png", png(bar_image()[0]))}
                          ).status_code == 200
            assert c.post("/v1/decensor", files={"image": ("a.png", png(bar_image()[0]))}
                          ).status_code == 200


def test_not_ready_is_503_before_the_body(tmp_path: Path) -> None:
    settings = Settings(engine="onnx", models=tmp_path)  # no model: never ready
    with serve_in_thread(settings, wait_ready=False) as url:
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=20) as sock:
            sock.sendall(UPLOAD_HEAD % 10_000_000)  # headers only: no body byte is sent
            status, body, closed = read_answer(sock)
        assert status == 503 and closed
        assert "loading" in body["message"] or "failed to load" in body["message"]


def test_full_queue_is_503_before_the_body() -> None:
    """With the only queue slot taken, an upload is refused from its headers alone."""
    slow = scene(900, 700, seed=5)
    slow[150:550, 200:700] = GREEN  # a second or so of OpenCV inpainting
    settings = Settings(engine="classical", max_queue=1)
    with serve_in_thread(settings) as url:

        async def attempt() -> tuple[int, dict, bool]:
            async with httpx.AsyncClient(base_url=url, timeout=300, trust_env=False) as ac:
                first = asyncio.create_task(ac.post(
                    "/v1/decensor", files={"image": ("s.png", png(slow))}, data={"variations": "2"}))
                while not first.done():
                    metrics = (await ac.get("/metrics")).text
                    if re.search(r"^deepcream_queue_depth 1\.0$", metrics, re.M):
                        break
                    await asyncio.sleep(0.005)

                def knock() -> tuple[int, dict, bool]:
                    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=20) as sock:
                        sock.sendall(UPLOAD_HEAD % 10_000_000)  # no body follows
                        return read_answer(sock)

                answer = await asyncio.to_thread(knock)
                assert (await first).status_code == 200
                return answer

        for _ in range(3):  # the first request may, rarely, finish before the knock
            status, body, closed = asyncio.run(attempt())
            if status == 503:
                break
    assert status == 503 and closed and "busy" in body["message"]
