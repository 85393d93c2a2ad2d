"""docs/serve.md's examples run: its server block in a process of its own, its client block and curl line against it."""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

DOC = Path(__file__).resolve().parents[2] / "docs" / "serve.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_documented_server_client_and_curl_run(serve_engine, tmp_path, capsys):
    server_code, client_code = blocks()
    serve_engine.save(tmp_path / ".interestlens" / "engine")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "INTERESTLENS_API_KEY"}
    proc = subprocess.Popen(
        [sys.executable, "-c", server_code.replace("8000", str(port))],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(f"{url}/healthz", timeout=5).json()["fitted"]:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the documented server did not answer"
            time.sleep(0.25)
        exec(compile(client_code.replace("8000", str(port)), str(DOC), "exec"), {})
        stored, items = capsys.readouterr().out.split(" ", 1)
        assert stored == "1" and len(ast.literal_eval(items)) == 5
        curl = re.search(r"^    (curl .*)$", DOC.read_text(encoding="utf-8"), re.M).group(1)
        if shutil.which("curl"):
            out = subprocess.run(
                curl.replace("8000", str(port)), shell=True, capture_output=True, check=True
            ).stdout
            assert len(httpx.Response(200, content=out).json()["items"]) == 5
    finally:
        proc.terminate()
        proc.wait(30)
