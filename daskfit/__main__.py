"""``python -m daskfit``: the ``daskfit`` command (see ``daskfit --help``)."""

from daskfit.cli import main

if __name__ == "__main__":
    main()
