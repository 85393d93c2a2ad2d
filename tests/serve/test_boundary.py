"""The HTTP app and the client are shells over the public Engine API: no private access, no lower layers."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli_boundary import breaks

SRC = Path(__file__).resolve().parents[2] / "src" / "interestlens"


def test_serve_and_client_use_only_public_names_and_allowed_layers():
    files = [*sorted((SRC / "serve").rglob("*.py")), SRC / "client.py"]
    assert len(files) > 2
    found = [
        f"{path.relative_to(SRC.parent)}:{line}: {what}"
        for path in files
        for line, what in breaks(path.read_text(encoding="utf-8"))
    ]
    assert not found, "serve goes around the public Engine API:\n" + "\n".join(found)


def test_the_client_imports_nothing_of_ours():
    source = (SRC / "client.py").read_text(encoding="utf-8")
    assert (
        "import interestlens" not in source and "from interestlens" not in source.split('"""', 2)[2]
    )
