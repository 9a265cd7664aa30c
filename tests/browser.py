"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``), no extra package.

:class:`Browser` opens a page, waits for its load event and reports what a person would notice: console
errors, uncaught exceptions, requests that failed, images that did not load, the page's text and its
links, and a screenshot. The protocol is JSON messages ending in a NUL byte on file descriptors 3
(to Chromium) and 4 (from it).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--remote-debugging-pipe", "--window-size=1280,1600"]
PAGE_STATE = """JSON.stringify({
  images: Array.from(document.images).map(i => ({src: i.src, complete: i.complete, width: i.naturalWidth})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  text: document.body ? document.body.innerText : ''
})"""


def chromium() -> str | None:
    """The Chromium binary on PATH (Debian's ``chromium`` package), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Visit:
    url: str
    problems: list[str] = field(default_factory=list)  # console errors, exceptions, failed requests, broken images
    images: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    text: str = ""


class Browser:
    def __init__(self, binary: str, timeout_s: float = 30.0):
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="vpbench-chromium-")
        to_child, self._to_chromium = os.pipe()
        self._from_chromium, from_child = os.pipe()

        def wire() -> None:  # in the child: its fds 3 and 4 become the two pipes (copied high first: either may be 3 or 4)
            reading, writing = os.dup(to_child), os.dup(from_child)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=wire, close_fds=False)
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._next_id, self.events = b"", 0, []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=self.session)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chromium], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chromium, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; events read meanwhile are kept in ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chromium, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def visit(self, url: str, screenshot: Path | None = None) -> Visit:
        """Load ``url``, wait for its load event (and a moment for late requests), and report on it."""
        self.events = []
        self.call("Page.navigate", {"url": url}, self.session)
        deadline = time.monotonic() + self.timeout_s
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._read(deadline))
        time.sleep(0.05)  # late subresource events
        state = json.loads(self.call("Runtime.evaluate", {"expression": PAGE_STATE, "returnByValue": True},
                                     self.session)["result"]["value"])
        visit = Visit(url, images=state["images"], links=state["links"], text=state["text"])
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                visit.problems.append(f"console error: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                visit.problems.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                visit.problems.append(f"log error: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                visit.problems.append(f"failed request: {params.get('errorText')} ({params.get('type')})")
        visit.problems += [f"image not loaded: {i['src']}" for i in visit.images if not (i["complete"] and i["width"])]
        if screenshot is not None:
            shot = self.call("Page.captureScreenshot", {"format": "png"}, self.session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return visit

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_chromium)
        os.close(self._from_chromium)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
