"""The command line's contract: one-line errors, exit codes, --debug, --help."""

from __future__ import annotations

import subprocess
import sys

from ploutos_core import get_plugin_manager, hookimpl
from ploutos_core.errors import DataError


def test_help_lists_every_command(run_cli) -> None:
    result = run_cli("--help")
    assert result.code == 0
    for command in ("data", "evaluate", "plugins", "run", "stages"):
        assert f"  {command} " in result.out


def test_version(run_cli) -> None:
    result = run_cli("--version")
    assert result.code == 0 and "ploutos, version 0.1.0" in result.out


def test_usage_error_exits_2(run_cli) -> None:
    result = run_cli("run", "curriculum", "--scale", "fast")
    assert result.code == 2
    assert "Invalid value for '--scale'" in result.err
    assert run_cli("no-such-command").code == 2


def test_project_error_is_one_line_and_debug_shows_traceback(run_cli, in_tmp) -> None:
    plain = run_cli("data", "fetch", "--source", "csv", "--tickers", "SPY")
    assert plain.code == 1
    assert plain.err == "Error: the csv source needs a directory: pass --data-dir DIR or set " \
                        "PLOUTOS_DATA_DIR\n"
    debug = run_cli("--debug", "data", "fetch", "--source", "csv", "--tickers", "SPY")
    assert debug.code == 1 and "Traceback" in debug.err


def test_an_exception_from_plugin_code_names_the_plugin(run_cli) -> None:
    class Buggy:
        @hookimpl
        def ploutos_register_commands(self, cli):  # type: ignore[no-untyped-def]
            @cli.command("crash")
            def crash() -> None:
                raise ZeroDivisionError("oops")

            @cli.command("refuse")
            def refuse() -> None:
                raise DataError("bad data: fix it")

    pm = get_plugin_manager(plugins=[("buggy", Buggy())])
    crash = run_cli("crash", pm=pm)
    assert crash.code == 1
    # Issue 13: never "internal error" for a plugin's bug; say whose code it is.
    assert crash.err == ("Error: plugin 'buggy' failed: ZeroDivisionError: oops (rerun with "
                         "--debug for the traceback and report it to the plugin's authors)\n")
    refuse = run_cli("refuse", pm=pm)
    assert refuse.code == 1 and refuse.err == "Error: bad data: fix it\n"


def test_plugin_command_may_not_replace_a_builtin(run_cli) -> None:
    import click

    class Hijack:
        @hookimpl
        def ploutos_register_commands(self, cli):  # type: ignore[no-untyped-def]
            cli.add_command(click.Command("run", callback=lambda: None))

    result = run_cli("--help", pm=get_plugin_manager(plugins=[("hijack", Hijack())]))
    assert result.code == 1
    assert "plugin 'hijack' adds the command 'run', which exists already" in result.err


def test_console_script_runs() -> None:
    result = subprocess.run([sys.executable, "-c",
                             "from ploutos_core.cli import entry_point; entry_point()",
                             "stages", "list"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "stage1" in result.stdout


def test_threads_option_limits_torch(run_cli, tiny_stage_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = run_cli("--threads", "1", "run", "stage", "tiny1", "--stage-file",
                         str(tiny_stage_file()), "--source", "synthetic", "--no-progress",
                         "--out", str(tmp_path))
        assert result.code == 0, result
        manifest = json.loads((tmp_path / "reports" / "run.json").read_text())
        assert manifest["hardware"]["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)
    assert run_cli("--threads", "-1", "stages", "list").code == 2
