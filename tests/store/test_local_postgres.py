"""The PostgreSQL fixture fails on a broken install and skips only on a machine that cannot have PostgreSQL."""

from __future__ import annotations

import os

import pytest

from tests.store.conftest import start_or_skip
from tests.store.local_postgres import (
    LocalPostgres,
    PostgresUnavailable,
    ensure_installed,
)

#: An apt-get that cannot reach any registry (a closed local port as its proxy), with
#: package lists of its own, so the machine's apt state is left alone.
UNREACHABLE_APT = (
    "Acquire::http::Proxy=http://127.0.0.1:9",
    "Acquire::https::Proxy=http://127.0.0.1:9",
    "Acquire::Retries=0",
)


def _outcome(start) -> BaseException | None:
    """What start_or_skip raised (a skip is an exception too); None if it returned."""
    try:
        start_or_skip(start)
    except BaseException as exc:
        return exc
    return None


def _broken_bin(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("initdb", "pg_ctl"):
        exe = bin_dir / name
        exe.write_text("#!/bin/sh\necho 'simulated broken install' >&2\nexit 1\n")
        exe.chmod(0o755)
    tmp_path.chmod(0o755)  # so that the postgres user reaches the scripts when we are root
    return bin_dir


def test_a_broken_install_fails_and_is_never_skipped(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    pg = LocalPostgres(base_dir=tmp_path / "cluster", bin_dir=_broken_bin(tmp_path))
    exc = _outcome(pg.start)
    assert type(exc) is PostgresUnavailable, exc
    assert "initdb failed" in str(exc)


def _not_installable(tmp_path):
    """ensure_installed on this machine with no binaries where it looks and no way to install."""
    if os.geteuid() != 0:
        return lambda: ensure_installed(patterns=(str(tmp_path / "none" / "*"),), use_path=False)
    lists, cache = tmp_path / "lists", tmp_path / "cache"
    (lists / "partial").mkdir(parents=True)
    (cache / "archives" / "partial").mkdir(parents=True)
    opts = (*UNREACHABLE_APT, f"Dir::State::Lists={lists}", f"Dir::Cache={cache}")
    return lambda: ensure_installed(
        timeout=120,
        patterns=(str(tmp_path / "none" / "*"),),
        use_path=False,
        apt_options=opts,
        package="postgresql-interestlens-absent",  # this machine has postgresql installed
    )


def test_a_machine_that_cannot_install_postgres_skips_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    exc = _outcome(_not_installable(tmp_path))
    assert isinstance(exc, pytest.skip.Exception), exc
    assert "cannot be installed here" in str(exc)
    assert "not root" in str(exc) or "cannot reach its package registry" in str(exc)


def test_under_ci_a_machine_that_cannot_install_postgres_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    exc = _outcome(_not_installable(tmp_path))
    assert isinstance(exc, pytest.fail.Exception), exc
    assert "CI must run the PostgreSQL tests" in str(exc)
