"""The command line's options: declared by each command, taken from the library."""

import argparse
import inspect

import pytest
from helpers import run_python

from keras_mlh.cli import options
from keras_mlh.cli import parser as cli_parser

pytestmark = pytest.mark.backend_independent  # argument parsing


def test_the_defaults_kept_without_keras_are_mlh_s():
    # `train` cannot import MLH for --help (it imports Keras): its defaults
    # are written in the command and checked here.
    from keras_mlh.cli import train
    from keras_mlh.models import MLH

    args = cli_parser.build_parser().parse_args(["train"])
    signature = inspect.signature(MLH).parameters
    assert args.bits == train.DEFAULT_BITS == signature["bits"].default
    assert args.mode == train.DEFAULT_MODE == signature["mode"].default


def test_the_defaults_of_the_options_are_the_library_s():
    from keras_mlh.datasets import from_arrays
    from keras_mlh.evaluation import retrieval_report
    from keras_mlh.export import export_encoder
    from keras_mlh.training import DEFAULT_EPOCHS

    parse = cli_parser.build_parser().parse_args
    train = parse(["train"])
    assert (
        train.batch_size
        == inspect.signature(from_arrays).parameters["batch_size"].default
    )
    evaluate = parse(["evaluate", "run"])
    report = inspect.signature(retrieval_report).parameters
    assert evaluate.precision_at == list(report["cutoffs"].default)
    assert (evaluate.k, evaluate.radius, evaluate.tie_breaking) == (
        report["k"].default,
        report["radius"].default,
        report["tie_breaking"].default,
    )
    export = parse(["export", "m.keras", "out"])
    exporter = inspect.signature(export_encoder).parameters
    assert (export.opset, export.atol) == (
        exporter["opset"].default,
        exporter["atol"].default,
    )
    train_help = cli_parser.build_parser(["train"])._subparsers._group_actions[0]
    assert f"default: {DEFAULT_EPOCHS}" in train_help.choices["train"].format_help()


def test_debug_is_one_option_before_or_after_the_command():
    parse = cli_parser.build_parser().parse_args
    assert parse(["--debug", "index", "build", "c.npz", "i"]).debug
    assert parse(["index", "build", "c.npz", "i", "--debug"]).debug
    assert parse(["index", "--debug", "build", "c.npz", "i"]).debug
    assert not parse(["index", "build", "c.npz", "i"]).debug


def test_only_the_command_that_runs_is_imported():
    code = (
        "import sys\n"
        "from keras_mlh.cli import main\n"
        "from keras_mlh.cli.parser import COMMANDS\n"
        "def imported():\n"
        "    return {c for c in COMMANDS if f'keras_mlh.cli.{c}' in sys.modules}\n"
        "for argv, commands in ((['--help'], set()), (['index', 'build', '--help'], "
        "{'index'})):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0\n"
        "    assert imported() == commands, imported()\n"
    )
    run_python(code)


@pytest.mark.parametrize("text, expected", [("16", 16), ("4096", 4096)])
def test_bits_follow_the_library_s_rule(text, expected):
    assert options.bits(text) == expected


@pytest.mark.parametrize("text", ["12", "0", "-8", "4104", "x"])
def test_bits_refused_with_the_library_s_reason(text):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
        options.bits(text)


def test_a_command_line_with_bad_bits_exits_2_naming_the_rule(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_parser.main(["train", "--bits", "12"])
    assert exit_info.value.code == 2
    assert "multiple of 8" in capsys.readouterr().err
