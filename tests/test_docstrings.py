"""Every `>>>` example in the docstrings of keras_mlh and keras_mlh_runtime
runs and shows what it says, in a temporary working folder (offline).

The examples see their module's names and `np`, `keras` and `keras_mlh`, as
a reader who has imported them would. An example that needs a dataset
download, image files of the user's or minutes of training is marked
`# doctest: +SKIP` where it stands, and reads as a sketch.
"""

import doctest
import importlib
import importlib.util
import pkgutil

import keras
import numpy as np
import pytest

import keras_mlh
import keras_mlh_runtime

# Modules whose optional dependency lives in another environment (tested
# there: tests/test_beam_encode.py).
OPTIONAL = {"keras_mlh_runtime.beam_encode": "apache_beam"}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names():
    for package in (keras_mlh, keras_mlh_runtime):
        yield package.__name__
        prefix = package.__name__ + "."
        for module in pkgutil.walk_packages(package.__path__, prefix):
            if not module.name.endswith(".__main__"):  # it runs the command
                yield module.name


def _docstrings():
    finder = doctest.DocTestFinder()
    for name in _module_names():
        needs = OPTIONAL.get(name)
        if needs and importlib.util.find_spec(needs) is None:
            continue
        for test in finder.find(importlib.import_module(name)):
            if test.examples:
                yield test


DOCSTRINGS = sorted(_docstrings(), key=lambda test: test.name)


def test_the_examples_are_found():
    names = {test.name for test in DOCSTRINGS}
    assert "keras_mlh_runtime.codes.pack_codes" in names
    assert "keras_mlh_runtime.encoder.HashEncoder" in names
    assert "keras_mlh.cli.options.default_of" in names


@pytest.mark.parametrize("test", DOCSTRINGS, ids=lambda test: test.name)
def test_docstring_example(test, tmp_path, monkeypatch):
    if all(example.options.get(doctest.SKIP) for example in test.examples):
        pytest.skip("a sketch: every line is marked +SKIP")
    monkeypatch.chdir(tmp_path)  # an example writes only in a temporary folder
    test.globs = {**test.globs, "np": np, "keras": keras, "keras_mlh": keras_mlh}
    report = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test, out=report.append, clear_globs=True)
    assert result.failed == 0, "".join(report)
