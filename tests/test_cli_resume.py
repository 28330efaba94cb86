"""Fault tests of `keras-mlh train`: kill -9, SIGTERM, --resume, disk full.

Each run is a subprocess on a tiny MNIST-5k sample (a few seconds per
epoch), bounded by timeouts, as a user's interrupted run would be.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from keras_mlh import files
from keras_mlh.cli import resume

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
EPOCHS = 4
# Many small steps (400 an epoch, ~3 s on an idle 2-core CPU): an epoch lasts
# long enough for SIGTERM to land before the resumed run ends.
TRAIN = [
    "train", "--limit", "1000", "--batch-size", "2", "--bits", "16",
    "--epochs", str(EPOCHS), "--val-every", "0", "--verbose", "2",
]  # fmt: skip
RUN_FILES = ["history.json", "model.keras", "run.json", "split.npz"]


def start(*args, cwd, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "keras_mlh.cli", *map(str, args)],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(process, expect, timeout=240):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    assert process.returncode == expect, f"{process.returncode}\n{out}\n{err}"
    return out, err


def wait_for_epoch(stage, epoch, process, timeout=180):
    """Waits until the staged run has completed `epoch` epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if stage.progress()["epoch"] >= epoch:
            return stage.progress()["epoch"]
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"no epoch {epoch} within {timeout} s")


def test_kill_9_then_sigterm_then_resume_loses_at_most_the_epoch_in_progress(
    tmp_path,
):
    out = tmp_path / "my run"  # a space, as users' paths have
    stage = resume.Stage(str(out))
    first = start(*TRAIN, "--out", out, cwd=tmp_path)
    done = wait_for_epoch(stage, 1, first)
    time.sleep(0.5)  # into the next epoch
    first.kill()  # kill -9: no clean-up runs at all
    finish(first, -signal.SIGKILL)
    assert stage.progress()["epoch"] >= done
    done = stage.progress()["epoch"]
    if done > EPOCHS - 2:
        pytest.skip("epochs too fast here to stop the resumed run before its end")
    assert not out.exists() and stage.exists()

    # A fresh run into it would discard the finished epochs: refused.
    fresh = start(*TRAIN, "--out", out, cwd=tmp_path)
    assert "--resume" in finish(fresh, 1)[1].splitlines()[-1]
    conflict = start("train", "--resume", out, "--bits", "32", cwd=tmp_path)
    assert "--bits 32 conflicts" in finish(conflict, 1)[1]

    # Resume, then stop it with SIGTERM: it cleans up as Ctrl-C does.
    second = start("train", "--resume", out, cwd=tmp_path)
    done = wait_for_epoch(stage, done + 1, second)
    second.send_signal(signal.SIGTERM)
    _, err = finish(second, 143)
    assert "--resume" in err and "terminated" in err.splitlines()[-1]
    assert not out.exists() and stage.progress()["epoch"] >= done
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(files.TEMP_PREFIX)]
    assert leftovers == [os.path.basename(stage.path)]

    third = start("train", "--resume", out, cwd=tmp_path)
    stdout, err = finish(third, 0)
    resumed_at = stage_epoch_from(stdout)
    assert resumed_at >= done
    # The finished run folder is a normal one: same files, all the epochs.
    assert sorted(os.listdir(out)) == RUN_FILES
    history = json.loads((out / "history.json").read_text())
    assert {len(values) for values in history.values()} == {EPOCHS}
    info = json.loads((out / "run.json").read_text())
    assert info["epochs"] == EPOCHS and info["bits"] == 16
    assert "--out" in info["command"]  # the command of the original run
    assert os.listdir(tmp_path) == ["my run"]  # the staging folder is gone


def stage_epoch_from(stdout):
    line = next(li for li in stdout.splitlines() if li.startswith("Resuming after"))
    return int(line.split()[3])


def test_resume_needs_an_interrupted_run(tmp_path):
    result = start("train", "--resume", "nothing", cwd=tmp_path)
    assert "No interrupted run of" in finish(result, 1)[1]
    result = start("train", "--resume", "nothing", "--overwrite", cwd=tmp_path)
    assert "give one of them" in finish(result, 1)[1]
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs setrlimit")
def test_disk_full_while_training_fails_in_one_line_and_keeps_nothing(tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    process = start(
        "train", "--limit", "100", "--epochs", "1", "--bits", "16",
        "--val-every", "0", "-q", "--out", "run",
        cwd=tmp_path, preexec_fn=limit,
    )  # fmt: skip
    _, err = finish(process, 1)
    # One line: the writer's own words (h5py's here), no traceback.
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("keras-mlh: error: ")
    assert os.listdir(tmp_path) == []  # no epoch completed: nothing kept


def test_damaged_resume_settings_are_refused(tmp_path, capsys):
    from keras_mlh import cli

    stage = resume.Stage(str(tmp_path / "run"))
    os.makedirs(stage.path)
    settings = {"format": resume.SETTINGS_FORMAT, "settings": {"bits": "abc"}}
    files.write_json(settings, os.path.join(stage.path, resume.SETTINGS_FILE))
    assert cli.main(["train", "--resume", str(tmp_path / "run")]) == 1
    assert "are damaged (bits='abc')" in capsys.readouterr().err
    assert os.listdir(stage.path) == [resume.SETTINGS_FILE]


def test_two_trains_into_one_run_cannot_share_its_staging_folder(tmp_path):
    stage = resume.Stage(str(tmp_path / "run"))
    stage.create({"bits": 16})
    with pytest.raises(ValueError, match="Another `keras-mlh train` started"):
        resume.Stage(str(tmp_path / "run")).create({"bits": 32})
    assert stage.settings() == {"bits": 16}
    with stage.locked():
        assert stage.owner() == os.getpid()
        with pytest.raises(ValueError, match=f"process {os.getpid()}"):
            with stage.locked():
                pass
    assert stage.owner() is None
    assert os.listdir(tmp_path) == [os.path.basename(stage.path)]


def test_resuming_on_changed_data_is_refused(tmp_path):
    import numpy as np

    from keras_mlh.datasets import from_arrays

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 8, 8, 1), np.uint8)
    data = from_arrays(images, np.arange(40) % 4, num_queries=8, seed=0)
    stage = resume.Stage(str(tmp_path / "run"))
    stage.create({}, resume.data_digest(data))
    resume.check_same_data(stage, resume.data_digest(data))  # the same: fine
    images[0, 0, 0, 0] ^= 1  # one pixel edited
    edited = from_arrays(images, np.arange(40) % 4, num_queries=8, seed=0)
    with pytest.raises(ValueError, match="training data .* has changed"):
        resume.check_same_data(stage, resume.data_digest(edited))


def test_resume_never_discards_the_staging_folder_of_a_live_train(tmp_path):
    from keras_mlh.cli import parser

    # `train --out run --overwrite` onto a finished run trains while the old
    # run folder (with its run.json) is still there.
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    stage = resume.Stage(str(out))
    stage.create({"bits": 16})
    args = parser.build_parser().parse_args(["train", "--resume", str(out)])
    with stage.locked():  # the live train
        with pytest.raises(ValueError, match=f"process {os.getpid()}"):
            resume.resumed_args(args)
        assert stage.settings() == {"bits": 16}
    with pytest.raises(ValueError, match="finished run folder"):
        resume.resumed_args(args)
    assert not stage.exists()  # a stopped one's is removed


def test_the_checkpoint_restores_weights_and_optimizer_state(tmp_path):
    import keras
    import numpy as np

    def model():
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        m.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
        return m

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = np.zeros((16, 2), "float32")
    stage = resume.Stage(str(tmp_path / "run"))
    stage.create({})
    left = os.path.join(stage.path, "partial-checkpoint-3.weights.h5")
    open(left, "w").close()  # a kill between writing and renaming it
    trained = model()
    checkpoint = resume.checkpoint_callback(stage, stage.progress())
    trained.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[checkpoint])
    assert stage.progress()["epoch"] == 1
    assert sorted(os.listdir(stage.path)) == [
        "checkpoint-1.weights.h5",
        resume.PROGRESS_FILE,
        resume.SETTINGS_FILE,
    ]
    assert stage.progress()["history"]["loss"] == checkpoint.history["loss"]

    resumed = model()  # another initialization, as in a new process
    resumed.optimizer.build(resumed.trainable_variables)  # as `MLH.fit` does
    restore = resume.checkpoint_callback(stage, stage.progress())
    # Epoch 1 of 1 is done: fit only restores (on_train_begin), trains nothing.
    resumed.fit(x, y, epochs=1, initial_epoch=1, verbose=0, callbacks=[restore])
    for a, b in zip(trained.weights, resumed.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(resumed.optimizer.iterations.numpy()) == 4  # the schedule's step
    for a, b in zip(
        trained.optimizer.variables, resumed.optimizer.variables, strict=True
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_lock_is_held_from_its_first_instant_and_never_stale(tmp_path):
    import fcntl

    stage = resume.Stage(str(tmp_path / "run"))
    stage.create({})
    lock = os.path.join(stage.path, resume.LOCK_FILE)
    # Another train has just locked the file and not yet written its pid.
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ValueError, match="Another `keras-mlh train`"):
            with stage.locked():
                pass
    # A lock file of a process that died (kill -9) holds no lock: taken over.
    with open(lock, "w") as f:
        f.write(str(_dead_pid()))
    assert stage.owner() is None
    with stage.locked():
        assert stage.owner() == os.getpid()


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_best_epoch_before_a_resume_is_kept_when_later_ones_are_worse(tmp_path):
    """val mAP 0.2, 0.5 | resume | 0.3, 0.1: epoch 2's weights are kept."""
    import keras
    import numpy as np

    scores = {0: 0.2, 1: 0.5, 2: 0.3, 3: 0.1}

    class ScriptedValMap(keras.callbacks.Callback):
        """Adds a fixed `val_map` per epoch, as RetrievalMetricsCallback would."""

        def on_epoch_end(self, epoch, logs=None):
            logs["val_map"] = scores[epoch]

    class Weights(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.after = {}

        def on_epoch_end(self, epoch, logs=None):
            self.after[epoch + 1] = [w.numpy().copy() for w in self.model.weights]

    def model():
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        m.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
        m.optimizer.build(m.trainable_variables)
        return m

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = np.ones((16, 2), "float32")
    stage = resume.Stage(str(tmp_path / "run"))
    stage.create({})
    first, seen = model(), Weights()
    checkpoint = resume.checkpoint_callback(stage, stage.progress(), "val_map")
    callbacks = [ScriptedValMap(), checkpoint, seen]
    first.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=callbacks)
    stored = stage.progress()["best"]
    assert stored == {
        "monitor": "val_map",
        "epoch": 2,
        "value": 0.5,
        "weights": "best-2.weights.h5",
    }
    assert "best-2.weights.h5" in os.listdir(stage.path)

    resumed = model()  # a new process: only the staging folder is left
    checkpoint = resume.checkpoint_callback(stage, stage.progress(), "val_map")
    callbacks = [ScriptedValMap(), checkpoint, seen]
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=4, verbose=0,
                callbacks=callbacks)  # fmt: skip
    assert stage.progress()["best"] == stored  # epochs 3 and 4 are worse
    assert sorted(n for n in os.listdir(stage.path) if n.endswith(".h5")) == [
        "best-2.weights.h5",
        "checkpoint-4.weights.h5",
    ]
    assert checkpoint.restore_best()["epoch"] == 2
    for got, expected in zip(resumed.weights, seen.after[2], strict=True):
        np.testing.assert_array_equal(got.numpy(), expected)
    assert not np.array_equal(seen.after[2][0], seen.after[4][0])  # it trained on
    # Without a monitor (no --val-split) nothing is picked.
    plain = resume.checkpoint_callback(stage, stage.progress())
    assert plain.best is None and plain.restore_best() is None
    os.remove(os.path.join(stage.path, "best-2.weights.h5"))
    damaged = resume.checkpoint_callback(stage, stage.progress(), "val_map")
    assert damaged.best is None  # its weights are gone: the choice starts afresh


@pytest.mark.parametrize("damage", ["{not json", '{"epoch": "2"}', "[]", "missing"])
def test_a_damaged_progress_record_is_an_error_not_a_restart(tmp_path, damage):
    """A damaged progress.json made --resume start from epoch 1 and drop
    the checkpoint beside it."""
    from keras_mlh.cli.errors import CLIError

    stage = resume.Stage(str(tmp_path / "run"))
    os.makedirs(stage.path)
    assert stage.progress()["epoch"] == 0  # no record yet: nothing done
    (tmp_path / stage.path / "checkpoint-2.weights.h5").write_bytes(b"weights")
    record = {"epoch": 2, "history": {"loss": [1.0, 0.5]}, "seconds": 3.0}
    progress = os.path.join(stage.path, resume.PROGRESS_FILE)
    with open(progress, "w") as f:
        json.dump({**record, "weights": "checkpoint-2.weights.h5"}, f)
    assert stage.progress()["epoch"] == 2
    with open(progress, "w") as f:
        if damage == "missing":  # the record names a checkpoint that is gone
            json.dump({**record, "weights": "checkpoint-9.weights.h5"}, f)
        else:
            f.write(damage)
    with pytest.raises(CLIError, match=r"progress\.json' is damaged.*--overwrite"):
        stage.progress()
