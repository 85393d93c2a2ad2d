"""The ``interestlens`` command line: a thin shell over the public :class:`~interestlens.engine.Engine`.

One module per command group (:mod:`~interestlens.cli.data`, :mod:`~interestlens.cli.model`,
:mod:`~interestlens.cli.evaluation`) and one renderer (:mod:`~interestlens.cli.render`)
through which every command prints; :mod:`~interestlens.cli.app` builds the Typer app.
"""

from interestlens.cli.app import app, main

__all__ = ["app", "main"]
