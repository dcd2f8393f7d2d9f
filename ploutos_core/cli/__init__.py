"""The ``ploutos`` command line: one module per command group, errors turned into one line."""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Sequence

import click

from ploutos_core.errors import PloutosError, PloutosWarning, TrainingInterrupted, first_line
from ploutos_core.pluginmanager.hookcalls import describe_plugin, plugin_of_exception
from ploutos_core.pluginmanager.manager import PloutosPluginManager

__all__ = ["main"]


def _fail(message: str, code: int = 1) -> int:
    click.echo(f"Error: {message}", err=True)
    return code


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """Ploutos's own warnings as one ``Warning:`` line; others as Python prints them."""
    if issubclass(category, PloutosWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)  # type: ignore[arg-type]


_PYTHON_SHOWWARNING = warnings.showwarning


def main(argv: Sequence[str] | None = None, *, pm: PloutosPluginManager | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage, 75 busy: retry,
    130 interrupted).

    :param argv: arguments without the program name (default: ``sys.argv[1:]``).
    :param pm: a ready plugin manager (tests); made from the global options when ``None``.
    """
    from ploutos_core.cli.app import build_cli
    from ploutos_core.cli.context import AppContext

    args = list(sys.argv[1:] if argv is None else argv)
    app = AppContext(pm)
    warnings.showwarning = _show_warning
    try:
        build_cli().main(args=args, prog_name="ploutos", standalone_mode=False, obj=app)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return _fail("aborted")
    except TrainingInterrupted as exc:
        return _fail(str(exc), exc.exit_code)
    except PloutosError as exc:
        if app.debug:
            traceback.print_exc()
        # An error class may carry its own code (BrokerBusyError: 75, "try again").
        return _fail(" ".join(str(exc).split()), int(getattr(exc, "exit_code", 1)))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if app.debug:
            raise
        plugin = plugin_of_exception(app.pm, exc) if app.has_pm else None
        if plugin is not None:
            return _fail(f"{describe_plugin(app.pm, plugin)} failed: {type(exc).__name__}: "
                         f"{first_line(exc)} (rerun with --debug for the traceback and report "
                         f"it to the plugin's authors)")
        return _fail(f"internal error: {type(exc).__name__}: {first_line(exc)} (rerun with "
                     f"--debug for the traceback and please report it)")
    finally:
        warnings.showwarning = _PYTHON_SHOWWARNING
    return 0


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s code."""
    sys.exit(main())
