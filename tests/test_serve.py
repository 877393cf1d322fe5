"""`initscope serve` answers a browser on localhost, and stops."""

import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_on_localhost():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "initscope", "serve", "--port", str(port),
                             "--depth", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        page, deadline = None, time.monotonic() + 30
        while page is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    page = r.read().decode()
            except OSError:
                time.sleep(0.2)
        assert page is not None, "the server did not answer"
        assert "initscope" in page and "<html" in page.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
