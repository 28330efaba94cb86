"""The ablation benchmark's `--quick` mode runs end to end (its numbers are
never asserted: benchmarks are read by people, not by CI)."""

import json
import os
import sys

import matplotlib.image
import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks")


@pytest.mark.end_to_end
def test_ablation_quick_writes_table_json_and_chart(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    sys.modules.pop("ablation", None)
    import ablation

    argv = ["--quick", "--epochs", "1", "--modes", "mlh", "center", "pairwise"]
    assert ablation.main([*argv, "--out", str(tmp_path)]) == 0
    table = (tmp_path / "ablation_quick.md").read_text()
    for mode in ("mlh", "center", "pairwise"):
        assert f"| {mode} |" in table
    assert "Train-step time, mlh / center" in table
    data = json.loads((tmp_path / "ablation_quick.json").read_text())
    assert {(r["mode"], r["bits"], r["seed"]) for r in data["runs"]} == {
        ("mlh", 16, 0),
        ("center", 16, 0),
        ("pairwise", 16, 0),
    }
    assert all(0.0 < r["map"] <= 1.0 for r in data["runs"])
    image = matplotlib.image.imread(tmp_path / "ablation_quick.png")
    assert image.shape[:2] == (400, 700) and image.std() > 0.01


@pytest.mark.backend_independent
def test_ablation_overrides_and_holdout_parse(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import ablation

    args = ablation.parse_args(
        ["--holdout", "--set", "mutual_weight=2", "--set", "top_k=None"]
    )
    assert dict(args.overrides) == {"mutual_weight": 2, "top_k": None}
    assert args.name == "tuning" and args.holdout


@pytest.mark.backend_independent
def test_backends_benchmark_table_has_one_row_per_backend(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import backends

    runs = [
        {"backend": b, "mode": "mlh", "map": score, "seed": seed, "epochs": 15}
        for b, scores in (("tensorflow", (0.90, 0.92)), ("jax", (0.93, 0.93)))
        for seed, score in enumerate(scores)
    ]
    ratios = {"mlh/keras": (1.1, 1.0, 1.3), "center/keras": (1.05, 0.9, 1.2)}
    timing = {
        "tensorflow": {
            "step_ms": {"mlh": 11.0, "center": 10.5, "keras": 10.0},
            "ratios": {
                k: {"median": m, "range": [lo, hi]}
                for k, (m, lo, hi) in {**ratios, "mlh/center": (1.04, 1, 1.1)}.items()
            },
        }
    }
    lines, table, spread = backends.summarize(
        runs, ["tensorflow", "jax", "torch"], timing
    )
    assert set(table) == {"tensorflow", "jax"}  # torch had no runs
    assert lines[0].count("|") == lines[2].count("|") == lines[3].count("|")
    assert lines[2] == (
        "| tensorflow | 10.0 | 11.0 | 10.5 | 1.10 (1.00–1.30) | 1.05 (0.90–1.20) "
        "| 1.04 (1.00–1.10) | 0.9100 ± 0.0100 (n=2) | — |"
    )
    assert table["tensorflow"]["ratios"]["mlh/keras"] == 1.1
    assert lines[3].startswith(
        "| jax | — | — | — | — | — | — | 0.9300 ± 0.0000 (n=2) |"
    )
    assert spread == pytest.approx(0.02)
    args = backends.parse_args(["--quick"])
    assert args.seeds == [0] and args.epochs == 2 and args.timing_rounds == 3


@pytest.mark.backend_independent
def test_backends_benchmark_ratio_is_the_median_of_interleaved_rounds(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import backends

    # Round 2's mlh chunk ran through a load spike: it moves the range only.
    chunks = {"mlh": [12.0, 30.0, 11.0], "center": [10.0, 10.0, 10.0]}
    assert backends.ratio_of_rounds(chunks) == pytest.approx((1.2, 1.1, 3.0))
    chunks["keras"] = [8.0, 10.0, 12.5]
    assert backends.ratio_of_rounds(chunks, "center", "keras") == pytest.approx(
        (1.0, 0.8, 1.25)
    )


@pytest.mark.backend_independent
def test_data_scale_report_marks_the_extrapolation(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import data_scale

    args = data_scale.parse_args(["--sizes", "100", "400", "--max-steps", "3"])
    rows = [
        {"mode": mode, "dataset_images": n, "images": n, "seconds": 1.0,
         "images_per_second": speed, "peak_rss_mb": rss}
        for n, rss in ((100, 1000.0), (400, 1003.0))
        for mode, speed in (("pipeline", 600.0), ("train", 100.0), ("encode", 300.0))
    ]  # fmt: skip
    markdown, data = data_scale.report(rows, args)
    assert "**extrapolated**" in markdown and "130,000" in markdown
    assert "`train` ran at most 3 batches" in markdown
    assert "`pipeline`, `encode` ran a full epoch" in markdown
    # 3 MB per 300 images, linearly, to 130,000 images: 1003 + 0.01 * 129,600.
    assert data["summary"]["train"]["extrapolated_rss_mb_130k"] == 1003 + 1296
    assert data["summary"]["pipeline_over_train_400"] == 6.0


@pytest.mark.backend_independent
def test_ann_quick_writes_recall_table_and_json(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    sys.modules.pop("ann", None)
    import ann

    assert ann.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "ann_quick.md").read_text()
    # The report names the command that made it, without the results folder.
    assert "Command: `python benchmarks/ann.py --quick --threads 1`" in table
    for name in ("| flat |", "| ivf32 |", "| hnsw32 |", "| multihash4x16 |"):
        assert name in table
    assert "shared with other engineers" in table
    data = json.loads((tmp_path / "ann_quick.json").read_text())
    rows = {(r["index"], r["param"]): r for r in data["rows"]}
    assert rows[("flat", None)]["recall"] == 1.0
    assert rows[("ivf32", 32)]["recall"] == 1.0  # every list visited: exact
    assert all(0.0 <= r["recall"] <= 1.0 for r in data["rows"])
    assert [a["case"] for a in data["add"]["cases"]] == [
        "no ids",
        "increasing ids",
        "shuffled ids",
    ]


@pytest.mark.backend_independent
def test_ann_recall_counts_ties_at_the_kth_distance(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import ann
    import numpy as np

    database = np.zeros((10, 1), np.uint8)
    database[6:] = 0b111  # 6 codes at distance 0 of the query, 4 at distance 3
    query = np.zeros((1, 1), np.uint8)
    kth = np.array([0])  # exact top-2: distance 0, with 6 tied candidates
    assert ann.recall(database, query, np.array([[4, 5]]), kth, 2) == 1.0
    assert ann.recall(database, query, np.array([[4, 7]]), kth, 2) == 0.5
    assert ann.recall(database, query, np.array([[4, -1]]), kth, 2) == 0.5


@pytest.mark.backend_independent
def test_encode_ceiling_is_inference_over_inference_plus_decoding(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    import encode

    # 300 µs of inference and 100 µs of decoding per image: on saturated
    # cores a file route reaches at best 0.75x the in-memory images/s.
    ceiling = encode._ceiling(300e-6, 100e-6, 0.6, 2000.0)
    assert ceiling["ceiling"] == pytest.approx(0.75)
    assert ceiling["measured_over_ceiling"] == pytest.approx(0.8)
    assert ceiling["in_memory_cores_busy"] == pytest.approx(0.6)
    # 0.6 of 2 cores busy: 0.8 cores for both, were the other cores free.
    assert ceiling["ceiling_all_cores_free"] == 1.0
    assert encode._ceiling(300e-6, 100e-6, 0.6, 6000.0)[
        "ceiling_all_cores_free"
    ] == pytest.approx(2 / (1.8 * 4 / 3))
    table = encode._ceiling_markdown(
        {"cpu_ceiling": {"onnxruntime": ceiling, "keras": ceiling}}
    )
    assert "| onnxruntime | HashEncoder.encode_files(PNG paths) | 300 | 100 |" in table
    assert "**0.75x**" in table and "**0.60x**" in table


@pytest.mark.backend_independent
def test_index_memory_case_reports_memory_beyond_its_baseline(monkeypatch):
    """One case in its own process (as the benchmark runs them), tiny."""
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            os.path.join(BENCHMARKS, "index_memory.py"),
            "--case",
            "HammingIndex, scattered ids",
            "--n",
            "40000",
            "--batches",
            "4",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["count"] == 40000
    assert result["peak_mb"] >= result["steady_mb"] > 0
    monkeypatch.syspath_prepend(BENCHMARKS)
    import index_memory

    results = [
        {"case": case, "seconds": 1.0, "peak_mb": 30.0, "steady_mb": 20.0}
        for case in index_memory.CASES
    ]
    results[2].update(peak_mb=33.0, steady_mb=25.0)  # HammingIndex, scattered ids
    data = {"summary": index_memory.summary(results, n=1 << 20, bits=64)}
    assert data["summary"]["with_ids_over_faiss"] == {
        "steady_mb": 1.25,
        "peak_mb": 1.1,
    }
    args = index_memory.parse_args(["--n", str(1 << 20)])
    table = index_memory.markdown(results, data, args, "test machine")
    assert "**1.25x** steady (misses), **1.10x** peak (meets)" in table
