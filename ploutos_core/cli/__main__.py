"""``python -m ploutos_core.cli``: the ``ploutos`` command without the console script."""

from ploutos_core.cli import entry_point

if __name__ == "__main__":
    entry_point()
