"""The review page in a real browser: headless Chromium opens `callrec view`'s page over http on
loopback, the spectrograms load and every audio player knows its recording's duration.

Chromium is driven through the DevTools protocol over a pipe (--remote-debugging-pipe: JSON
messages separated by NUL on fds 3 and 4), which needs no websocket client or chromedriver.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from callrec import cli
from callrec_local.stack import AtomicMotoServer
from tests.integration.conftest import free_port
from tests.integration.spectrum.contact import (
    Contact,
    make_bucket_and_table,
    record_contact,
    remove_bucket_and_table,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--remote-debugging-pipe",
]
PAGE_STATE = """
(async () => {
  const images = [...document.images];
  const audio = [...document.querySelectorAll("audio")];
  const settled = (el, ok, bad) => new Promise(resolve => {
    el.addEventListener(ok, resolve, {once: true});
    el.addEventListener(bad, resolve, {once: true});
  });
  await Promise.all(images.map(i => i.complete ? null : settled(i, "load", "error")));
  await Promise.all(audio.map(a => a.readyState >= 1 ? null : settled(a, "loadedmetadata", "error")));
  return {
    images: images.map(i => ({kind: i.dataset.kind, naturalWidth: i.naturalWidth})),
    audio: audio.map(a => ({kind: a.dataset.kind, duration: a.duration,
                            error: a.error ? a.error.code : null})),
  };
})()
"""

pytestmark = pytest.mark.browser


class DevTools:
    """A minimal DevTools protocol client over Chromium's debugging pipe."""

    def __init__(self, user_data_dir: Path) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_fds() -> None:  # in the child: the protocol's fds 3 (in) and 4 (out)
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,  # noqa: PLW1509 - only dup2, async-signal-safe
            # dup2's copies are inheritable; Python's own fds are not, so none other leaks.
            close_fds=False,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        reply = self._receive(lambda m: m.get("id") == self._next_id, timeout=30)
        assert "error" not in reply, (method, reply)
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event
        return self._receive(lambda m: m.get("method") == method, timeout=timeout, keep=False)

    def _receive(self, wanted: Any, timeout: float, keep: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message: dict[str, Any] = json.loads(raw)
                if wanted(message):
                    return message
                if keep or "method" in message:
                    self.events.append(message)
            remaining = deadline - time.monotonic()
            assert remaining > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                assert chunk, "Chromium closed the debugging pipe"
                self._buffer += chunk

    def close(self) -> None:
        # The browser may close the pipe before it answers.
        with contextlib.suppress(AssertionError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = AtomicMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def contact(moto: str) -> Iterator[Contact]:
    s3, dynamodb = boto3.session.Session().client("s3"), boto3.session.Session().client("dynamodb")
    bucket, table = make_bucket_and_table(s3, dynamodb)
    try:
        yield record_contact(s3, dynamodb, bucket, table, seconds=6.5)
    finally:
        # moto's state is per process, shared by every server in it: leave none behind.
        remove_bucket_and_table(s3, dynamodb, bucket, table)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over http on loopback, and its URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    assert Path(CHROMIUM).exists(), "headless Chromium is needed: apt-get install chromium"
    devtools = DevTools(tmp_path / "profile")
    try:
        yield devtools
    finally:
        devtools.close()


def open_page(browser: DevTools, url: str) -> str:
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session: str = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    browser.send("Page.enable", session)
    browser.send("Page.navigate", session, url=url)
    browser.wait_event("Page.loadEventFired")
    return session


def test_the_review_page_loads_its_images_and_knows_each_recordings_duration(
    contact: Contact, moto: str, served: tuple[Path, str], browser: DevTools
) -> None:
    # Given the page `callrec view` writes, served over http on loopback
    root, base = served
    status = cli.main(
        [
            "view",
            contact.contact_id,
            "--output",
            str(root / "review.html"),
            "--table",
            contact.table,
            "--bucket",
            contact.bucket,
            "--endpoint-url",
            moto,
        ]
    )
    assert status == 0

    # When headless Chromium opens it and waits for the images and the audio metadata
    session = open_page(browser, f"{base}/review.html")
    state = browser.send(
        "Runtime.evaluate",
        session,
        expression=PAGE_STATE,
        awaitPromise=True,
        returnByValue=True,
    )["result"]["value"]
    if screenshot := os.environ.get("CALLREC_SCREENSHOT"):  # a picture of the page, to look at
        shot = browser.send("Page.captureScreenshot", session, captureBeyondViewport=True)
        Path(screenshot).write_bytes(base64.b64decode(shot["data"]))

    # Then every spectrogram has pixels and every player the recording's duration
    assert sorted(i["kind"] for i in state["images"]) == ["cu", "op", "stereo"]
    assert all(i["naturalWidth"] > 0 for i in state["images"]), state
    assert sorted(a["kind"] for a in state["audio"]) == ["cu", "op", "stereo"]
    for audio in state["audio"]:
        assert audio["error"] is None, state
        assert audio["duration"] == pytest.approx(contact.seconds, abs=0.01), state
