"""docs/serve.md's examples run: its server block in a process of its own, its client block and
curl line against it, and its shell block (two workers, a healthz, a refit both workers swap to)."""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

DOC = Path(__file__).resolve().parents[2] / "docs" / "serve.md"
README = DOC.parents[1] / "README.md"
BIN = Path(sys.executable).parent


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def shell_lines(text: str) -> list[str]:
    """The commands of the one ``sh`` block of ``text``, comments dropped."""
    (block,) = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def readme_service_lines() -> list[str]:
    """The commands of the README's "Run it as a service" section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Run it as a service") :]
    return shell_lines(section[: section.index("\n## ", 3)])


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


def test_the_documented_workers_healthz_and_refit_run(serve_engine, tmp_path):
    """docs/serve.md's shell block, and the README's service lines against the same server."""
    serve_line, curl_line, refit_line = shell_lines(DOC.read_text(encoding="utf-8"))
    assert "--workers 2" in serve_line and refit_line.startswith("interestlens refit")
    export, readme_serve, *readme_curls = readme_service_lines()
    assert readme_serve == serve_line and export.startswith("export INTERESTLENS_API_KEY=")
    serve_engine.save(tmp_path / ".interestlens" / "engine")
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k != "INTERESTLENS_API_KEY"}
    env["INTERESTLENS_API_KEY"] = export.split("=", 1)[1]
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # the venv's `interestlens`
    proc = subprocess.Popen(
        [*shlex.split(serve_line), "--port", port, "--refit-every", "0", "--refit-interval", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        printed = ""
        for line in proc.stdout:  # type: ignore[union-attr]
            printed += line
            if line.startswith("try: curl"):
                break
        assert "2 worker(s)" in printed, printed + proc.stderr.read()  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}"
        curl = curl_line.replace("8000", port)
        if shutil.which("curl"):
            out = subprocess.run(
                curl, shell=True, capture_output=True, check=True, timeout=180
            ).stdout
            before = httpx.Response(200, content=out).json()
        else:
            before = httpx.get(f"{url}/healthz", timeout=180).json()
        assert before["fitted"] and before["worker"] != proc.pid
        if shutil.which("curl"):
            posted, slate = (
                subprocess.run(
                    line.replace("8000", port),
                    shell=True,
                    env=env,
                    capture_output=True,
                    check=True,
                    timeout=180,
                ).stdout
                for line in readme_curls
            )
            assert httpx.Response(200, content=posted).json()["stored"] == 1
            assert len(httpx.Response(200, content=slate).json()["items"]) == 5
        done = subprocess.run(
            shlex.split(refit_line), cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "published v000002" in done.stdout, done.stdout
        # every worker swaps within a second or so: ask over fresh connections until two
        # workers have answered with the new version
        deadline = time.monotonic() + 60
        newer: set[int] = set()
        while len(newer) < 2:
            assert time.monotonic() < deadline, f"workers on the new version: {newer}"
            with httpx.Client(base_url=url, timeout=30) as client:
                health = client.get("/healthz").json()
            if health["model_version"] > before["model_version"]:
                newer.add(health["worker"])
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
