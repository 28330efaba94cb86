import errno
import json
import os
import subprocess
import sys

import pytest

from keras_mlh.files import (
    TEMP_PREFIX,
    atomic_folder,
    atomic_path,
    check_output,
    check_writable,
    write_json,
)

pytestmark = pytest.mark.backend_independent  # file IO

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode(path):
    return os.stat(path).st_mode & 0o777


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as temp:
        assert not target.exists()
        with open(temp, "w") as f:
            f.write("done")
    assert target.read_text() == "done"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_keeps_old_content_and_leaves_no_temp_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        with open(temp, "w") as f:
            f.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        with atomic_path(tmp_path / "nope" / "x.json"):
            pass


def test_write_json_creates_folder(tmp_path):
    path = write_json({"a": [1, 2]}, tmp_path / "sub" / "r.json")
    assert json.loads(open(path).read()) == {"a": [1, 2]}


def test_write_json_failure_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_json({"a": object()}, tmp_path / "r.json")
    assert os.listdir(tmp_path) == []


def test_write_json_is_strict_json_with_a_final_newline(tmp_path):
    path = tmp_path / "r.json"
    write_json({"a": None}, path)
    assert path.read_text().endswith("}\n")
    with pytest.raises(ValueError):
        write_json({"a": float("nan")}, tmp_path / "nan.json")
    assert os.listdir(tmp_path) == ["r.json"]


# ------------------------------------------------------------ atomic_path
def test_atomic_path_gives_the_usual_permissions(tmp_path):
    # mkstemp makes 0600 files; the result should look like any other file.
    with atomic_path(tmp_path / "out.txt") as temp:
        assert os.path.basename(temp).startswith(TEMP_PREFIX)
        assert temp.endswith("out.txt")  # writers that go by the extension
        open(temp, "w").close()
    assert _mode(tmp_path / "out.txt") == 0o666 & ~_umask()


def test_atomic_path_makes_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target, make_folders=True):
        assert (tmp_path / "a" / "b").is_dir()
        raise RuntimeError("crash")
    assert os.listdir(tmp_path / "a" / "b") == []
    with atomic_path(target, make_folders=True) as temp:
        open(temp, "w").close()
    assert target.is_file()


@pytest.mark.parametrize("step", ["write", "fsync", "replace"])
def test_a_full_disk_at_any_write_leaves_the_previous_file(step, tmp_path, monkeypatch):
    """ENOSPC while writing, at the flush to disk, or at the rename: a
    `ValueError` naming the user's file, which keeps its content."""
    out = tmp_path / "codes.npy"
    out.write_text("previous")
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if step != "write":
        monkeypatch.setattr(os, step, lambda *args: (_ for _ in ()).throw(full))
    with pytest.raises(ValueError, match=f"Cannot write {str(out)!r}: No space left"):
        with atomic_path(out) as temp, open(temp, "w") as f:
            f.write("new")
            if step == "write":
                raise full
    assert out.read_text() == "previous"
    assert os.listdir(tmp_path) == ["codes.npy"]


def test_a_full_disk_at_the_flush_of_a_folder_leaves_the_previous_one(
    tmp_path, monkeypatch
):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("previous")
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", lambda *args: (_ for _ in ()).throw(full))
    with pytest.raises(ValueError, match=f"Cannot write {str(out)!r}: No space left"):
        with atomic_folder(out) as work:
            (tmp_path / work / "run.json").write_text("new")
    assert os.listdir(tmp_path) == ["run"]
    assert (out / "run.json").read_text() == "previous"


def test_kill_9_while_writing_leaves_the_previous_file(tmp_path):
    out = tmp_path / "model.keras"
    out.write_text("previous")
    code = (
        "import sys, time\n"
        "from keras_mlh_runtime.files import atomic_path\n"
        "with atomic_path(sys.argv[1]) as temp, open(temp, 'w') as f:\n"
        "    f.write('half of the new file'); f.flush()\n"
        "    print('writing', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "writing"
    child.kill()  # kill -9: no clean-up runs
    child.wait()
    assert out.read_text() == "previous"


def test_atomic_path_refuses_a_folder_and_a_file_in_the_way(tmp_path):
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        with atomic_path(tmp_path):
            pass
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="/file' is a file, not a folder"):
        with atomic_path(tmp_path / "file" / "x.json", make_folders=True):
            pass
    assert os.listdir(tmp_path) == ["file"]


# ---------------------------------------------------------- check_writable
def test_check_writable_creates_nothing(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.txt"
    assert check_writable(target) == str(target)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kind, make, match",
    [
        ("file", "folder", "is a folder; give a file name"),
        ("folder", "file", "exists and is not a folder"),
    ],
)
def test_check_writable_kind(kind, make, match, tmp_path):
    path = tmp_path / "thing"
    if make == "folder":
        path.mkdir()
    else:
        path.write_text("")
    with pytest.raises(ValueError, match=match):
        check_writable(path, kind=kind)
    check_writable(path)  # without a kind, only the location counts


def test_check_writable_without_permission(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if IS_ROOT:  # root may write anyway: pretend it may not
        real_access = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda path, mode: path != str(locked) and real_access(path, mode),
        )
    try:
        with pytest.raises(ValueError, match="no write permission on .*locked"):
            check_writable(locked / "a" / "out.txt")
        with pytest.raises(ValueError, match="Cannot write to .*locked"):
            with atomic_folder(locked / "eval"):
                pass
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)


# ----------------------------------------------------------- atomic_folder
def test_atomic_folder_moves_a_new_folder_into_place(tmp_path):
    out = tmp_path / "runs" / "run"
    with atomic_folder(out) as work:
        assert os.path.basename(work).startswith(TEMP_PREFIX)
        assert os.path.dirname(work) == str(tmp_path / "runs")
        assert not out.exists()
        (tmp_path / "runs" / os.path.basename(work) / "model.txt").write_text("m")
    assert os.listdir(out) == ["model.txt"]
    assert os.listdir(tmp_path / "runs") == ["run"]
    # mkdtemp makes a private 0700 folder; the result gets the usual mode.
    assert _mode(out) == 0o777 & ~_umask()


def test_atomic_folder_replaces_an_existing_folder_only_on_success(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out) as work:
        open(os.path.join(work, "new.txt"), "w").close()
        raise RuntimeError("crash")
    assert os.listdir(out) == ["old.txt"]
    assert os.listdir(tmp_path) == ["run"]
    with atomic_folder(out) as work:
        open(os.path.join(work, "new.txt"), "w").close()
    assert os.listdir(out) == ["new.txt"]
    assert os.listdir(tmp_path) == ["run"]


def test_atomic_folder_failure_leaves_no_temporary(tmp_path):
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "a" / "run") as work:
        open(os.path.join(work, "model.keras"), "w").close()
        raise RuntimeError("crash")
    assert os.listdir(tmp_path / "a") == []


def test_atomic_folder_restores_the_old_folder_when_the_swap_fails(
    tmp_path, monkeypatch
):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if calls.count(str(out)) == 1 and dst == str(out):  # the new folder's
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    # The error names the user's folder, not the temporary one.
    match = f"Cannot write {str(out)!r}: No space left on device"
    with pytest.raises(ValueError, match=match), atomic_folder(out) as work:
        open(os.path.join(work, "new.txt"), "w").close()
    assert os.listdir(out) == ["old.txt"]
    assert os.listdir(tmp_path) == ["run"]


def test_atomic_folder_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="Cannot write to .*is a file, not a folder"):
        with atomic_folder(tmp_path / "file" / "run"):
            pass
    with pytest.raises(ValueError, match="exists and is not a folder"):
        with atomic_folder(tmp_path / "file"):
            pass
    assert os.listdir(tmp_path) == ["file"]


def test_check_output_replaces_only_a_folder_of_ours(tmp_path):
    def check(path, overwrite):
        kwargs = {"kind": "folder", "marker": "marker.json", "what": "thing"}
        return check_output(path, overwrite=overwrite, **kwargs)

    assert check(tmp_path / "new", False).endswith("new")
    assert check(tmp_path, False)  # empty is fine
    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(
        ValueError, match="pass --overwrite to replace an earlier thing"
    ):
        check(tmp_path, False)
    with pytest.raises(ValueError, match="Refusing to replace .*no marker.json"):
        check(tmp_path, True)
    (tmp_path / "marker.json").write_text("{}")
    assert check(tmp_path, True) == str(tmp_path)


# ------------------------------------------------------------- check_output
def test_check_output_needs_overwrite_for_an_existing_file(tmp_path):
    out = tmp_path / "codes.npz"
    assert check_output(out) == str(out)  # a new name is fine
    out.write_text("old")
    with pytest.raises(ValueError, match="exists; pass --overwrite to replace it"):
        check_output(out)
    assert check_output(out, overwrite=True) == str(out)
    # A dangling link is an existing name too: writing would replace it.
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="exists"):
        check_output(tmp_path / "link")


def test_check_output_never_writes_over_an_input(tmp_path):
    source = tmp_path / "imgs.npy"
    source.write_text("images")
    (tmp_path / "alias.npy").symlink_to(source)
    os.link(source, tmp_path / "hard.npy")
    for out in (source, tmp_path / "alias.npy", tmp_path / "hard.npy"):
        with pytest.raises(ValueError, match="it is an input of this command"):
            check_output(out, inputs=[source], overwrite=True)
    # `..` in the path does not hide it either.
    sneaky = tmp_path / "sub" / ".." / "imgs.npy"
    with pytest.raises(ValueError, match="input"):
        check_output(sneaky, inputs=[source], overwrite=True)
    assert source.read_text() == "images"


def test_check_output_guards_companion_files(tmp_path):
    codes = tmp_path / "db.index.json"
    codes.write_text("{}")
    with pytest.raises(ValueError, match="it is an input"):
        check_output(
            tmp_path / "db.index",
            inputs=[codes],
            overwrite=True,
            companions=[tmp_path / "db.index.json"],
        )
    with pytest.raises(ValueError, match="db.index.json' exists"):
        check_output(tmp_path / "db.index", companions=[codes])


def test_check_output_never_replaces_a_folder_holding_an_input(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "metadata.json").write_text("{}")
    (out / "model.keras").write_text("model")
    args = {"kind": "folder", "marker": "metadata.json", "overwrite": True}
    with pytest.raises(ValueError, match="holds .*model.keras.*an input"):
        check_output(out, inputs=[out / "model.keras"], **args)
    assert check_output(out, inputs=[tmp_path / "elsewhere.keras"], **args)
    with pytest.raises(ValueError, match="inside .*an input folder"):
        check_output(tmp_path / "photos" / "run", not_inside=[tmp_path / "photos"])
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        check_output(out)


def test_failures_to_read_pass_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out") as _:
        open(tmp_path / "missing-input.npy")
    with pytest.raises(RuntimeError, match="bug"), atomic_path(tmp_path / "o"):
        raise RuntimeError("a bug")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs setrlimit")
def test_a_real_file_size_limit_names_the_output(tmp_path):
    out = tmp_path / "report.json"
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))\n"
        "from keras_mlh.files import write_json\n"
        "try:\n"
        f"    write_json(list(range(10000)), {str(out)!r})\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert f"Cannot write {str(out)!r}: File too large" in result.stdout, result
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------ permissions
@pytest.fixture
def fixed_umask(monkeypatch):
    """Umask 027 (0600 and 0640 differ), and any later change of it fails."""
    previous = os.umask(0o027)

    def no_umask_change(mask):
        raise AssertionError(f"os.umask({mask:#o}) changes it for every thread")

    monkeypatch.setattr(os, "umask", no_umask_change)
    yield 0o027
    monkeypatch.undo()
    os.umask(previous)


def test_outputs_get_the_umask_mode_without_changing_the_umask(tmp_path, fixed_umask):
    write_json({}, tmp_path / "r.json")
    with atomic_folder(tmp_path / "run") as work:
        open(os.path.join(work, "m.txt"), "w").close()
    with atomic_folder(tmp_path / "run"):  # replaces the folder (a trash folder)
        pass
    assert _mode(tmp_path / "r.json") == 0o666 & ~fixed_umask
    assert _mode(tmp_path / "run") == 0o777 & ~fixed_umask
