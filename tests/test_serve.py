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


def _app_processes(server_pid: int) -> list[int]:
    """The server's session apps: its children running `-m initscope --config`."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == server_pid and b"initscope" in cmdline and b"--config" in cmdline:
            found.append(int(entry))
    return found


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_sessions_are_capped_and_end_with_their_sockets():
    import asyncio

    import aiohttp

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "initscope", "serve", "--port", str(port),
                             "--max-sessions", "2", "--depth", "3", "--width", "32"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    async def visit() -> None:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the server is up when its page answers
                try:
                    async with http.get(url + "/") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.2)
            # two sessions, one asking for a huge terminal, both read slowly (a small
            # message limit, as the client that once left its app behind)
            sockets = [await http.ws_connect(f"{url}/ws?width=4000&height=2000",
                                             max_msg_size=1024) for _ in range(2)]
            assert _wait_until(lambda: len(_app_processes(proc.pid)) == 2, 30)
            third = await http.ws_connect(f"{url}/ws")
            message = await third.receive(timeout=10)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert third.close_code == 1013  # "try again later": the cap holds
            async with http.get(url + "/") as r:
                assert r.status == 503 and "in use" in await r.text()
            for ws in sockets:  # dropped, not closed politely
                ws._response.connection.transport.abort()
        assert _wait_until(lambda: not _app_processes(proc.pid), 20), "an app outlived its socket"

    try:
        asyncio.run(asyncio.wait_for(visit(), 90))
        assert proc.poll() is None  # and the server goes on
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_an_empty_host_and_warns_on_a_public_one():
    done = subprocess.run([sys.executable, "-m", "initscope", "serve", "--host", ""],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--host is empty" in done.stderr
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "initscope", "serve", "--host", "0.0.0.0",
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_until(lambda: _answers(port), 30)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "WARNING: listening on 0.0.0.0" in err


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
            return True
    except OSError:
        return False


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "initscope", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "in use" in done.stderr and "Traceback" not in done.stderr
