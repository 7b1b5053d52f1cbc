"""Smoke test of the `bench` console script: it runs with tiny iteration counts and writes a valid
report. Not a timed test: the figures are printed and stored, never asserted."""
import json
import os

import pytest

pytest.importorskip("cv2", reason="the benchmark's references are OpenCV functions")
pytest.importorskip("yaml", reason="the SSD benchmark reads its model spec")

from trt_infer import bench  # noqa: E402


def test_bench_writes_json_and_markdown(tmp_path, capsys):
    import cv2

    out = str(tmp_path / "bench")
    assert bench.main(["--iterations", "3", "--out", out]) == 0
    with open(os.path.join(out, "bench.json")) as handle:
        report = json.load(handle)
    assert report["iterations"] == 3
    assert set(report["machine"]) >= {"cpu", "cores", "python", "numpy", "opencv"}
    names = [row["name"] for row in report["benchmarks"]]
    assert names[0].startswith("preprocess 640x480")
    if hasattr(cv2.dnn, "NMSBoxesBatched"):
        assert any(name.startswith("SSD decode + NMS") for name in names)
        assert any(name.startswith("NMS stage only") for name in names)
    for row in report["benchmarks"]:
        for side in ("ours", "reference"):
            assert 0 < row[side]["median_ms"] <= row[side]["p95_ms"]
        assert row["ratio_median"] == pytest.approx(row["ours"]["median_ms"] / row["reference"]["median_ms"])
    with open(os.path.join(out, "bench.md")) as handle:
        table = handle.read()
    assert table.startswith("| benchmark | ratio median | ratio p95 |")
    assert table.count("\n|") == len(names) + 1  # header rule + one row per benchmark
    printed = capsys.readouterr().out
    assert printed.startswith("machine: ") and report["machine"]["opencv"] in printed


def test_bad_iteration_count_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--iterations", "0"])
    assert "--iterations must be at least 1" in capsys.readouterr().err
