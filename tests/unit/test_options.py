"""The command line becomes typed options once, in the CLI; nothing below reads argparse."""

from __future__ import annotations

import ast
from pathlib import Path

import ktriage
from ktriage.cli import build_parser
from ktriage.options import DemoOptions, LiveOptions, UIOptions

PACKAGE = Path(ktriage.__file__).parent


def test_live_options_from_the_command_line() -> None:
    args = build_parser().parse_args(
        [
            "--kubeconfig", "/k", "--context", "prod", "-n", "shop",
            "--audit-log", "/a.log", "--audit-log", "/b.log",
            "--falco", "auto", "--tetragon", "off", "--from-start",
            "--listen-audit", "127.0.0.1:0", "--read-only", "--theme", "ktriage-light",
            "--snapshot-dir", "/snaps", "--headless",
        ]
    )  # fmt: skip
    options = LiveOptions.from_args(args)
    assert (options.kubeconfig, options.context, options.namespace) == ("/k", "prod", "shop")
    assert options.audit_log == ("/a.log", "/b.log")
    assert options.runtime("falco") == ("auto",) and options.runtime("tetragon") == ("off",)
    assert options.from_start and options.headless
    assert options.listen_audit == "127.0.0.1:0" and options.listen_falco is None
    assert options.ui == UIOptions("ktriage-light", True, Path("/snaps"))


def test_runtime_sources_not_given_stay_unset() -> None:
    options = LiveOptions.from_args(build_parser().parse_args([]))
    assert options.falco is None and options.tetragon is None and options.audit_log == ()
    assert options.ui == UIOptions()


def test_demo_options_from_the_command_line() -> None:
    args = build_parser().parse_args(
        ["demo", "--scenario", "token-theft", "--speed", "20", "--dir", "/d", "--read-only"]
    )
    options = DemoOptions.from_args(args)
    assert (options.scenario, options.speed, options.directory) == ("token-theft", 20.0, Path("/d"))
    assert options.ui.read_only
    defaults = DemoOptions.from_args(build_parser().parse_args(["demo"]))
    assert (defaults.scenario, defaults.speed, defaults.directory) == ("cryptominer", 5.0, None)


def test_only_the_cli_reads_argparse() -> None:
    readers = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "sim" not in path.relative_to(PACKAGE).parts
        and any(
            (isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and node.module == "argparse")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
    assert readers == ["cli.py", "options.py"]
