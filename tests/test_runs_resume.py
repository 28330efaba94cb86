"""G4: a run killed with SIGKILL resumes after its last completed epoch and
keeps the best epoch by validation mAP (`keras_mlh.runs.train`, `RunBackup`).

Each run is a subprocess on a tiny MNIST-5k sample (a few seconds per
epoch), bounded by timeouts, as a user's interrupted run would be.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_mlh import cli, runs

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
EPOCHS = 5
# Scripted val mAP per epoch: epoch 2 is the best, the later ones worse.
SCORES = [0.2, 0.5, 0.3, 0.1, 0.4]
# `runs.train` on 1,000 digits in batches of 2 (~350 steps, a few seconds an
# epoch), with the validation mAP scripted and every epoch's weights saved
# beside the run (at its start and its end), to compare the model kept.
SCRIPT = """
import json, os, sys
import numpy as np
import keras
import keras_mlh.callbacks
from keras_mlh import runs
from keras_mlh.datasets.data_source import training_data

out, kwargs = sys.argv[1], json.loads(sys.argv[2])
scores, weights = kwargs.pop("scores"), out + "-weights"
os.makedirs(weights, exist_ok=True)

class Scripted(keras.callbacks.Callback):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def _save(self, name):
        np.savez(os.path.join(weights, name), *self.model.get_weights())

    def on_epoch_begin(self, epoch, logs=None):
        self._save(f"start-{epoch}.npz")

    def on_epoch_end(self, epoch, logs=None):
        logs["val_map"] = scores[epoch]
        self._save(f"end-{epoch + 1}.npz")

keras_mlh.callbacks.RetrievalMetricsCallback = Scripted
data, source = training_data(limit=1000, batch_size=2)
runs.train(out, data, source=source, val_split=100, verbose=2, **{"bits": 16, **kwargs})
"""


def start(out, **kwargs):
    kwargs = {"epochs": EPOCHS, "scores": SCORES, **kwargs}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out), json.dumps(kwargs)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process, expect, timeout=300):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    assert process.returncode == expect, f"{process.returncode}\n{out}\n{err}"
    return out, err


def wait_for_epoch(out, epoch, process, timeout=240):
    """Waits until the run has completed and backed up `epoch` epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if runs.epochs_done(out) >= epoch:
            return
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no epoch {epoch} within {timeout} s")


def weights(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


# Process-level: kill -9 of a training process, then the same call again. What
# the resume rests on (RunBackup with BackupAndRestore) is tested in-process on
# every backend below, so the kill runs once, under TensorFlow.
@pytest.mark.end_to_end
def test_kill_9_then_resume_continues_after_the_last_epoch_and_keeps_the_best(
    tmp_path,
):
    out = tmp_path / "my run"  # a space, as users' paths have
    first = start(out)
    wait_for_epoch(out, 2, first)  # epoch 2, the best, is done
    time.sleep(0.3)  # into the next epoch
    first.kill()  # kill -9: no clean-up runs at all
    finish(first, -signal.SIGKILL)
    done = runs.epochs_done(out)
    if done >= EPOCHS - 1:
        pytest.skip("epochs too fast here to stop the run before its end")
    assert not out.exists()
    stage = runs.stage_of(str(out))
    logged = json.loads(open(os.path.join(stage, "epochs.json")).read())["history"]

    # (A fresh run or other settings over it are refused: in-process below.)
    resumed = start(out, resume=True)
    stdout, _ = finish(resumed, 0)
    assert f"Resuming after epoch {done} of {EPOCHS}" in stdout
    saved = out.parent / "my run-weights"
    # It went on from the weights (and optimizer) of the last completed
    # epoch of the killed run, not from epoch 0 or the epoch in progress.
    # (`end-N` is rewritten only for the epochs the resumed run trains.)
    started, ended = saved / f"start-{done}.npz", saved / f"end-{done}.npz"
    for a, b in zip(weights(started), weights(ended), strict=True):
        np.testing.assert_array_equal(a, b)
    history = json.loads((out / "history.json").read_text())
    assert history["val_map"] == SCORES
    assert history["loss"][:done] == logged["loss"][:done]  # the epochs kept
    info = json.loads((out / "run.json").read_text())
    assert (info["validation"]["best_epoch"], info["epochs"]) == (2, EPOCHS)
    assert info["validation"]["best_val_map"] == 0.5
    # The model kept is epoch 2's, from before the kill.
    import keras

    import keras_mlh.models  # noqa: F401  (registers MLH)

    kept = keras.saving.load_model(out / "model.keras")
    for a, b in zip(kept.get_weights(), weights(saved / "end-2.npz"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path)) == ["my run", "my run-weights"]


def test_resume_needs_an_interrupted_run(tmp_path, capsys):
    out = str(tmp_path / "nothing")
    assert cli.main(["train", "--out", out, "--resume"]) == 1
    assert "No interrupted run of" in capsys.readouterr().err
    assert cli.main(["train", "--out", out, "--resume", "--overwrite"]) == 1
    assert "give one of them" in capsys.readouterr().err
    assert cli.main(["train", "--resume"]) == 1
    assert "--resume needs the --out" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.end_to_end  # `keras-mlh train` in a child process
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs setrlimit")
def test_disk_full_while_training_fails_in_one_line_and_keeps_nothing(tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    process = subprocess.Popen(
        [sys.executable, "-m", "keras_mlh.cli", "train", "--limit", "100",
         "--epochs", "1", "--bits", "16", "--val-every", "0", "-q", "--out", "run"],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=limit,
    )  # fmt: skip
    _, err = finish(process, 1)
    # One line: the writer's own words (h5py's here), no traceback.
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("keras-mlh: error: ")
    assert os.listdir(tmp_path) == []  # no epoch completed: nothing kept


def test_a_damaged_epoch_log_is_an_error_not_a_restart(tmp_path):
    stage = runs.stage_of(str(tmp_path / "run"))
    os.makedirs(os.path.join(stage, "backup"))
    with open(os.path.join(stage, "epochs.json"), "w") as f:
        f.write('{"history": {"loss": [1.0]}, "seconds": 3.0}')
    assert runs.epochs_done(tmp_path / "run") == 0  # logged, not backed up
    with open(os.path.join(stage, "backup", "training_metadata.json"), "w") as f:
        f.write('{"epoch": 2, "batch": 0}')
    with open(os.path.join(stage, "epochs.json"), "w") as f:
        f.write('{"history": {"loss": [1.0, 0.5]}, "seconds": 3.0}')
    assert runs.epochs_done(tmp_path / "run") == 2
    # Killed after logging epoch 3 but before its backup: 2 epochs are kept.
    with open(os.path.join(stage, "epochs.json"), "w") as f:
        f.write('{"history": {"loss": [1.0, 0.5, 0.4]}, "seconds": 4.0}')
    assert runs.epochs_done(tmp_path / "run") == 2
    with open(os.path.join(stage, "epochs.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match=r"epochs\.json' is damaged.*--overwrite"):
        runs.epochs_done(tmp_path / "run")


def test_run_backup_keeps_the_best_epoch_and_drops_a_killed_epoch_s_files(tmp_path):
    """In one process: val mAP 0.2, 0.5, 0.3 | stop in epoch 4 | 0.1, 0.4."""
    import keras

    from keras_mlh.callbacks.run_backup import RunBackup

    class Scripted(keras.callbacks.Callback):
        def __init__(self, stop_at=None):
            super().__init__()
            self.stop_at, self.after = stop_at, {}

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.stop_at:
                raise KeyboardInterrupt  # as Ctrl-C in epoch 4

        def on_epoch_end(self, epoch, logs=None):
            logs["val_map"] = SCORES[epoch]
            self.after[epoch + 1] = [w.copy() for w in self.model.get_weights()]

    def model():
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        m.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
        m.optimizer.build(m.trainable_variables)
        return m

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = np.ones((16, 2), "float32")
    fit = {"epochs": EPOCHS, "batch_size": 4, "verbose": 0}
    first, seen = model(), Scripted(stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, callbacks=[seen, RunBackup(tmp_path, "val_map")], **fit)
    # A killed epoch 4 that had written its (better) best file and its log.
    (tmp_path / "best-4.weights.h5").write_bytes(b"partial")
    log = json.loads((tmp_path / "epochs.json").read_text())
    log["history"]["val_map"].append(0.6)
    (tmp_path / "epochs.json").write_text(json.dumps(log))
    resumed, again = model(), Scripted()
    backup = RunBackup(tmp_path, "val_map")
    resumed.fit(x, y, callbacks=[again, backup], **fit)
    assert sorted(again.after) == [4, 5]  # epochs 1-3 were not trained again
    assert backup.history["val_map"] == SCORES
    assert backup.restore_best() == {"epoch": 2, "value": 0.5}
    for got, expected in zip(resumed.get_weights(), seen.after[2], strict=True):
        np.testing.assert_array_equal(got, expected)
    assert sorted(p.name for p in tmp_path.glob("best-*")) == ["best-2.weights.h5"]


# Once (under TensorFlow): the run's bookkeeping is Python around `fit`; an
# MLH model resumes on every backend in tests/test_mlh.py
# (test_backup_and_restore_resumes_after_interruption), and RunBackup in
# test_run_backup_keeps_the_best_epoch_and_drops_a_killed_epoch_s_files.
@pytest.mark.backend_independent
def test_a_resume_reads_the_epoch_log_once_and_refuses_other_settings(
    small_mnist, tmp_path, monkeypatch
):
    from keras_mlh.callbacks import run_backup

    out, end = tmp_path / "run", run_backup.RunBackup.on_epoch_end
    train = dict(data=small_mnist, epochs=2, val_every=0, verbose=0)

    def stop(self, epoch, logs=None):
        end(self, epoch, logs)
        raise KeyboardInterrupt  # after epoch 1 is backed up

    with monkeypatch.context() as patched:
        patched.setattr(run_backup.RunBackup, "on_epoch_end", stop)
        with pytest.raises(KeyboardInterrupt):
            runs.train(out, bits=16, **train)
    reads, read_log = [], runs.read_log

    def counted(stage):
        reads.append(stage)
        return read_log(stage)

    # A fresh run would discard the finished epoch.
    with pytest.raises(
        ValueError,
        match=r"\(1 epoch done\) can be resumed: rerun the command with --resume",
    ):
        runs.train(out, bits=16, **train)
    monkeypatch.setattr(runs, "read_log", counted)
    monkeypatch.setattr(run_backup, "read_log", counted)
    with pytest.raises(ValueError, match=r"\(bits: 16 then, 32 now\); resume with"):
        runs.train(out, bits=32, resume=True, **train)
    assert len(reads) == 1
    # A setting the run was started with that no longer exists differs too.
    log = read_log(runs.stage_of(str(out)))
    settings = dict(log["settings"])
    runs._stage_record("stage", settings, 2, small_mnist, {}, log, None)  # the same
    log["settings"]["augment"] = True
    with pytest.raises(ValueError, match=r"\(augment: True then, None now\)"):
        runs._stage_record("stage", settings, 2, small_mnist, {}, log, None)
    info = runs.train(out, bits=16, resume=True, **train)
    assert len(reads) == 2  # once per resume
    assert info["epochs"] == 2 and info["bits"] == 16
