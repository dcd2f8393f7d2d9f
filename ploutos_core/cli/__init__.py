"""The ``ploutos`` command line: one module per command group, errors turned into one line."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import click

from ploutos_core.errors import PloutosError, TrainingInterrupted
from ploutos_core.pluginmanager.manager import PloutosPluginManager, get_plugin_manager

__all__ = ["main"]


def _prescan(argv: Sequence[str]) -> tuple[list[str], list[str], bool]:
    """Find ``--plugin``/``--block-plugin``/``--debug`` before click parses the command line.

    Plugins can add commands, so the manager must exist before click sees the
    command name; the group declares the same options for ``--help``.
    """
    plugins: list[str] = []
    blocked: list[str] = []
    debug = False
    args = list(argv)
    for index, arg in enumerate(args):
        if not arg.startswith("-") and arg not in ("--plugin", "--block-plugin"):
            previous = args[index - 1] if index else ""
            if previous not in ("--plugin", "--block-plugin"):
                break  # the sub-command: global options end here
        if arg == "--debug":
            debug = True
        for flag, target in (("--plugin", plugins), ("--block-plugin", blocked)):
            if arg == flag and index + 1 < len(args):
                target.append(args[index + 1])
            elif arg.startswith(flag + "="):
                target.append(arg.split("=", 1)[1])
    return plugins, blocked, debug


def _fail(message: str, code: int = 1) -> int:
    click.echo(f"Error: {message}", err=True)
    return code


def main(argv: Sequence[str] | None = None, *, pm: PloutosPluginManager | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage, 130 interrupted).

    :param argv: arguments without the program name (default: ``sys.argv[1:]``).
    :param pm: a ready plugin manager (tests); made from the arguments when ``None``.
    """
    from ploutos_core.cli.app import build_cli

    args = list(sys.argv[1:] if argv is None else argv)
    plugins, blocked, debug = _prescan(args)
    try:
        if pm is None:
            pm = get_plugin_manager(local_plugins=plugins, blocked=blocked)
        for error in pm.load_errors:
            click.echo(f"Warning: {error} (skipped)", err=True)
        cli = build_cli(pm)
        cli.main(args=args, prog_name="ploutos", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return _fail("aborted")
    except TrainingInterrupted as exc:
        return _fail(str(exc), 130)
    except PloutosError as exc:
        if debug:
            traceback.print_exc()
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if debug:
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
                     f"traceback and please report it)")
    return 0


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s code."""
    sys.exit(main())
