from typing import Any

import typer
from typer.testing import CliRunner

from tests.support import plain
from tillflow import __version__
from tillflow.cli import HELP_PANELS, app, command_modules


def _walk(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under a group (typer's groups carry their subcommands in ``commands``)."""
    paths = []
    for name, cmd in group.commands.items():
        paths.append((*prefix, name))
        if hasattr(cmd, "commands"):
            paths += _walk(cmd, (*prefix, name))
    return paths


def test_every_command_module_is_found_and_every_top_command_has_a_panel():
    assert "tillflow.commands" in command_modules()
    root: Any = typer.main.get_command(app)
    listed = {name for names in HELP_PANELS.values() for name in names}
    assert set(root.commands) <= listed, f"commands without a help panel: {set(root.commands) - listed}"


def test_every_command_has_help_and_a_docstring():
    root: Any = typer.main.get_command(app)
    runner = CliRunner()
    for path in _walk(root):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        cmd = root
        for part in path:
            cmd = cmd.commands[part]
        assert (cmd.help or "").strip(), f"`tillflow {' '.join(path)}` has no help text"


def test_version_and_missing_config_file(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.strip() == f"tillflow {__version__}"
    missing = tmp_path / "a-long-folder-name-that-a-narrow-panel-would-wrap-or-cut" / "nope.toml"
    result = runner.invoke(app, ["--config", str(missing), "dev", "status"])
    assert result.exit_code == 2
    assert f"config file {missing} does not exist" in plain(result.output)


def test_a_tillflow_error_is_printed_once_in_the_one_error_format(tmp_path):
    """Commands let TillflowError propagate; the CLI prints ``error: <message>`` and exits 1, no traceback."""
    bad = tmp_path / "estate.yaml"
    bad.write_text("stores: [unclosed")
    result = CliRunner().invoke(app, ["catalogue", "validate", str(bad)])
    assert result.exit_code == 1
    assert plain(result.output).startswith(f"error: {bad}: not valid YAML")
    assert "Traceback" not in result.output


def test_a_cdc_source_file_error_is_a_config_error_named_by_file(tmp_path):
    source = tmp_path / "shop.yaml"
    source.write_text("name: shop\nengine: postgres\npassword: hunter2\n")
    result = CliRunner().invoke(app, ["connectors", "render", str(source)])
    assert result.exit_code == 1
    text = plain(result.output)
    assert text.startswith(f"error: {source}: password: passwords never go in a source file")
    assert "hunter2" not in text
