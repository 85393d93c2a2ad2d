"""``python -m interestlens``: the command line, as the ``interestlens`` script."""

from interestlens.cli import main

if __name__ == "__main__":
    main()
