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
    ensure_folder,
    remove_stale_temps,
    staged_files,
    temp_name,
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
        open(temp, "w").close()
    assert _mode(tmp_path / "out.txt") == 0o666 & ~_umask()


def test_atomic_path_makes_folders_and_removes_them_on_error(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target, make_folders=True):
        assert (tmp_path / "a" / "b").is_dir()
        raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []
    with atomic_path(target, make_folders=True) as temp:
        open(temp, "w").close()
    assert target.is_file()


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
            with staged_files(locked / "eval"):
                pass
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)


# ----------------------------------------------------------- ensure_folder
def test_ensure_folder_removes_only_what_it_made(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError), ensure_folder(tmp_path / "kept" / "a" / "b"):
        raise RuntimeError("crash")
    assert os.listdir(tmp_path) == ["kept"]
    assert os.listdir(tmp_path / "kept") == []
    with ensure_folder(tmp_path / "kept" / "a") as folder:
        assert folder == str(tmp_path / "kept" / "a")
    assert (tmp_path / "kept" / "a").is_dir()


def test_ensure_folder_keeps_a_folder_that_got_files(tmp_path):
    with pytest.raises(RuntimeError), ensure_folder(tmp_path / "a") as folder:
        open(os.path.join(folder, "x.txt"), "w").close()
        raise RuntimeError("crash")
    assert os.listdir(tmp_path / "a") == ["x.txt"]


# ------------------------------------------------------------ staged_files
def test_staged_files_renames_all_at_the_end(tmp_path):
    out = tmp_path / "eval"
    with staged_files(out) as stage:
        first = stage("a.png")
        assert first.endswith(".png")  # writers that go by the extension
        for name, temp in (("a.png", first), ("report.json", stage("report.json"))):
            with open(temp, "w") as f:
                f.write(name)
        assert sorted(os.listdir(out))[0].startswith(TEMP_PREFIX)
        assert not (out / "a.png").exists()
    assert sorted(os.listdir(out)) == ["a.png", "report.json"]
    assert (out / "report.json").read_text() == "report.json"
    assert _mode(out / "a.png") == 0o666 & ~_umask()


def test_staged_files_writes_nothing_on_error(tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "report.json").write_text("old")
    with pytest.raises(RuntimeError), staged_files(out) as stage:
        with open(stage("report.json"), "w") as f:
            f.write("new")
        raise RuntimeError("crash")
    assert os.listdir(out) == ["report.json"]
    assert (out / "report.json").read_text() == "old"
    with pytest.raises(RuntimeError), staged_files(tmp_path / "new" / "eval") as stage:
        stage("a.png")
        raise RuntimeError("crash")
    assert sorted(os.listdir(tmp_path)) == ["eval"]


def test_staged_files_refuses_a_file(tmp_path):
    (tmp_path / "eval").write_text("")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        with staged_files(tmp_path / "eval"):
            pass


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


def test_atomic_folder_failure_removes_the_folders_it_made(tmp_path):
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "a" / "b" / "run"):
        raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []


def test_atomic_folder_restores_the_old_folder_when_the_swap_fails(
    tmp_path, monkeypatch
):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(src).startswith(TEMP_PREFIX) and dst == str(out):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    # The error names the user's folder, not the temporary one.
    match = f"Cannot write {str(out)!r}: No space left on device"
    with pytest.raises(ValueError, match=match), atomic_folder(out) as work:
        open(os.path.join(work, "new.txt"), "w").close()
    assert os.listdir(out) == ["old.txt"]
    assert os.listdir(tmp_path) == ["run"]


def test_the_previous_folder_is_never_left_where_the_sweep_removes_it(
    tmp_path, monkeypatch
):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    real_replace, moved_to = os.replace, []

    def replace(src, dst):
        if src == str(out):
            moved_to.append(os.path.basename(os.path.dirname(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with atomic_folder(out):
        pass
    # A kill right after this rename leaves the old folder there, in a name
    # that `remove_stale_temps` does not match.
    assert len(moved_to) == 1 and moved_to[0].startswith(TEMP_PREFIX)
    assert not moved_to[0].startswith(TEMP_PREFIX + "tmp-")


def test_atomic_folder_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="Cannot write to .*is a file, not a folder"):
        with atomic_folder(tmp_path / "file" / "run"):
            pass
    with pytest.raises(ValueError, match="exists and is not a folder"):
        with atomic_folder(tmp_path / "file"):
            pass
    assert os.listdir(tmp_path) == ["file"]


def test_check_replaceable_folder(tmp_path):
    from keras_mlh.files import check_replaceable_folder

    args = ("marker.json", "thing", "--overwrite")
    assert check_replaceable_folder(tmp_path / "new", False, *args).endswith("new")
    assert check_replaceable_folder(tmp_path, False, *args)  # empty is fine
    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(
        ValueError, match="pass --overwrite to replace an earlier thing"
    ):
        check_replaceable_folder(tmp_path, False, *args)
    with pytest.raises(ValueError, match="Refusing to replace .*no marker.json"):
        check_replaceable_folder(tmp_path, True, *args)
    (tmp_path / "marker.json").write_text("{}")
    assert check_replaceable_folder(tmp_path, True, *args) == str(tmp_path)


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


# ---------------------------------------------------------- stale temps
def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temps_of_dead_processes_are_removed_and_reported(tmp_path, capsys):
    host_prefix = temp_name().rsplit("-", 2)[0]  # .keras-mlh-tmp-HOST
    dead = f"{host_prefix}-{_dead_pid()}-"
    (tmp_path / f"{dead}abc").write_text("half a file")
    (tmp_path / f"{dead}dir").mkdir()
    (tmp_path / f"{dead}dir" / "model.keras").write_text("")
    kept = [
        f"{temp_name()}live",  # this process runs
        f"{TEMP_PREFIX}tmp-00000000-{_dead_pid()}-x",  # another machine's
        f"{TEMP_PREFIX}train-run1",  # a resumable run, not a temporary
        f"{TEMP_PREFIX}abcdefgh",  # not of the rule
        f"{host_prefix}-{10**20}-x",  # no process has that pid
        "mine.txt",
    ]
    for name in kept:
        (tmp_path / name).write_text("")
    with atomic_path(tmp_path / "out.txt") as temp:  # any write sweeps first
        open(temp, "w").close()
    assert sorted(os.listdir(tmp_path)) == sorted([*kept, "out.txt"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "removed 2 stale temporary entries" in err
    assert remove_stale_temps(tmp_path) == []


def test_temporary_names_follow_the_stale_rule(tmp_path):
    with atomic_path(tmp_path / "a.txt") as temp:
        assert os.path.basename(temp).startswith(temp_name())
    with atomic_folder(tmp_path / "run") as work:
        assert os.path.basename(work).startswith(temp_name())


# ------------------------------------------------- errors name the user's path
def test_disk_full_names_the_output_not_the_temporary(tmp_path):
    out = tmp_path / "codes.npy"
    with pytest.raises(ValueError, match=f"Cannot write {str(out)!r}: No space"):
        with atomic_path(out) as temp:
            raise OSError(errno.ENOSPC, "No space left on device", temp)
    run = tmp_path / "run"
    with pytest.raises(ValueError) as caught:
        with atomic_folder(run) as work:
            # TensorFlow and faiss raise their own types, quoting the temp name.
            inner = os.path.join(work, "saved_model", "v_temp", "x.tempstate123")
            raise RuntimeError(f"{inner}; No space left on device [Op:SaveV2]")
    message = str(caught.value)
    assert f"Cannot write {str(run / 'saved_model')!r}: No space left" in message
    assert TEMP_PREFIX not in message
    with pytest.raises(ValueError, match=f"Cannot write {str(out)!r}: Permission"):
        with atomic_path(out) as temp:
            raise PermissionError(errno.EACCES, "Permission denied", temp)
    assert os.listdir(tmp_path) == []


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
    with staged_files(tmp_path / "eval") as stage:
        open(stage("a.png"), "w").close()
    with atomic_folder(tmp_path / "run") as work:
        open(os.path.join(work, "m.txt"), "w").close()
    with atomic_folder(tmp_path / "run"):  # replaces the folder (a trash folder)
        pass
    assert _mode(tmp_path / "r.json") == 0o666 & ~fixed_umask
    assert _mode(tmp_path / "eval" / "a.png") == 0o666 & ~fixed_umask
    assert _mode(tmp_path / "run") == 0o777 & ~fixed_umask
