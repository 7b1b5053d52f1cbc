"""Smoke tests of the benchmarks in trt_infer/bench/: the `bench` console script runs with tiny
iteration counts and writes a valid report, also when installed (data from share/trt_infer);
the GPU and node benchmarks import without their dependencies; the runtime never imports them.
Not timed tests: the figures are printed and stored, never asserted."""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("cv2", reason="the benchmark's references are OpenCV functions")
pytest.importorskip("yaml", reason="the SSD benchmark reads its model spec")

from trt_infer.bench import cpu as bench

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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



def installed_layout(root):
    """A prefix laid out as colcon installs the package: the modules under lib/pythonX.Y/site-packages,
    config/ under share/trt_infer, the ament index marker; returns (prefix, site-packages)."""
    prefix = os.path.join(str(root), "install")
    site_packages = os.path.join(prefix, "lib", "python{}.{}".format(*sys.version_info[:2]), "site-packages")
    shutil.copytree(os.path.join(REPO_ROOT, "trt_infer"), os.path.join(site_packages, "trt_infer"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(os.path.join(REPO_ROOT, "config"), os.path.join(prefix, "share", "trt_infer", "config"))
    index = os.path.join(prefix, "share", "ament_index", "resource_index", "packages")
    os.makedirs(index)
    open(os.path.join(index, "trt_infer"), "w").close()
    return prefix, site_packages


def run_installed_bench(tmp_path, prefix, site_packages):
    """`python -m trt_infer.bench --iterations 1` from a folder outside the repo and the install."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=site_packages, PYTHONDONTWRITEBYTECODE="1")
    env.pop("AMENT_PREFIX_PATH", None)
    if prefix:
        env["AMENT_PREFIX_PATH"] = prefix
    return subprocess.run([sys.executable, "-m", "trt_infer.bench", "--iterations", "1", "--out", "out"],
                          cwd=str(elsewhere), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True), elsewhere


def test_installed_bench_finds_its_model_spec_in_share(tmp_path):
    import cv2

    prefix, site_packages = installed_layout(tmp_path)
    result, elsewhere = run_installed_bench(tmp_path, prefix, site_packages)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("machine: ")
    with open(str(elsewhere / "out" / "bench.json")) as handle:
        report = json.load(handle)
    assert report["iterations"] == 1
    names = [row["name"] for row in report["benchmarks"]]
    assert names[0].startswith("preprocess 640x480")
    if hasattr(cv2.dnn, "NMSBoxesBatched"):
        assert any(name.startswith("SSD decode + NMS") for name in names)


def test_installed_bench_without_the_share_folder_names_the_missing_spec(tmp_path):
    import cv2

    if not hasattr(cv2.dnn, "NMSBoxesBatched"):
        pytest.skip("this OpenCV has no cv2.dnn.NMSBoxesBatched, so the benchmark reads no model spec")
    _, site_packages = installed_layout(tmp_path)
    result, _ = run_installed_bench(tmp_path, None, site_packages)
    assert result.returncode == 2, result.stderr
    assert os.path.join("config", "models", "ssd_mobilenet_v2_coco.yaml") in result.stderr
    assert "share/trt_infer" in result.stderr and "Traceback" not in result.stderr


def loaded_modules(code):
    """The trt_infer modules a fresh interpreter has loaded after running `code`."""
    result = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("code", ["import trt_infer", "import trt_infer.pipeline",
                                  "from trt_infer.pipeline import Pipeline"])
def test_the_runtime_does_not_import_the_benchmarks(code):
    modules = loaded_modules(code)
    assert "trt_infer" in modules
    assert not [name for name in modules if name == "trt_infer.bench" or name.startswith("trt_infer.bench.")]


@pytest.mark.parametrize("module", ["trt_infer.bench", "trt_infer.bench.cpu", "trt_infer.bench.gpu",
                                    "trt_infer.bench.node", "trt_infer.bench.machine", "trt_infer.bench.mapped"])
def test_the_benchmarks_import_without_ros_or_cuda(module):
    modules = loaded_modules("import " + module)
    assert module in modules
    assert not [name for name in modules if name.split(".")[0] in ("rclpy", "pycuda", "torch", "matplotlib")]


@pytest.mark.parametrize("module, words", [
    ("trt_infer.bench.gpu", ["--out", "--repeats", "--report", "--verbose", "--quiet"]),
    ("trt_infer.bench.mapped", ["--out", "--repeats", "--verbose", "--quiet"]),
    ("trt_infer.bench.node", ["--onnx", "--config", "--out", "--rate", "--seconds", "--reliability", "--verbose",
                              "--quiet", "--simulate-inference-ms", "--json", "stand-in"]),
    ("trt_infer.bench", ["--iterations", "--out", "--verbose", "--quiet"]),
])
def test_benchmark_help(module, words):
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    assert result.returncode == 0, result.stderr
    for word in words:
        assert word in result.stdout


def test_the_mapped_benchmark_table_names_the_machine_and_every_way():
    from trt_infer.bench import mapped

    row = {"output": "SSD scores 1917x91", "bytes": 697788}
    for index, way in enumerate(mapped.WAYS):
        row.update({way + "_read_ms": 0.1 * (index + 1), way + "_total_ms": 0.2 * (index + 1)})
    result = {"date": "2026-12-03T14:00:00", "command": "python -m trt_infer.bench.mapped --out x", "repeats": 5,
              "machine": {"gpu": "NVIDIA H200", "compute_capability": "9.0", "integrated": False, "cores": 16,
                          "cpu": "Xeon", "python": "3.12.3", "pycuda": "2025.1"},
              "rows": [row]}
    table = mapped.report(result)
    assert "NVIDIA H200 (sm 9.0, discrete)" in table and "medians of 5 runs" in table
    assert "| SSD scores 1917x91 | 697788 | 0.1000 | 0.2000 | 0.2000 | 0.4000 | 0.3000 | 0.6000 |" in table


def test_the_mapped_benchmark_runs_on_fake_pycuda(tmp_path, monkeypatch, capsys):
    """The benchmark's own logic (every way reads what the GPU wrote) on FakePycuda; no figures from it."""
    from tests.support.fake_tensorrt import FakePycuda
    from trt_infer.bench import mapped

    fake = FakePycuda(integrated=False).install(monkeypatch)
    monkeypatch.setattr(mapped, "OUTPUTS", (("small", 64), ("SSD scores 1917x91", 1917 * 91)))
    mapped.main(["--out", str(tmp_path), "--repeats", "2"])
    with open(str(tmp_path / "mapped.json")) as handle:
        result = json.load(handle)
    assert [row["output"] for row in result["rows"]] == ["small", "SSD scores 1917x91"]
    assert all(row[way + "_total_ms"] >= row[way + "_read_ms"] > 0 for row in result["rows"] for way in mapped.WAYS)
    assert result["machine"]["gpu"] == "NVIDIA Tegra X1" and "machine: " in capsys.readouterr().out
    assert (tmp_path / "mapped.md").read_text().startswith("# Reading an output on the CPU")
    assert fake.leaked == [] and fake.live == {} and fake.exit_problems() == []


def test_the_report_keeps_other_sections_when_it_re_renders_the_gpu_ones():
    sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
    try:
        import benchmark_report
    finally:
        sys.path.pop(0)
    text = "# Benchmarks\n\nintro\n## CPU\ncpu rows\n## GPU pre-processing\nold\n### detail\nx\n## Node\nnode rows"
    sections = benchmark_report.sections_of(text)
    assert [section[0] for section in sections] == ["## CPU", "## GPU pre-processing", "## Node"]
    assert sections[1] == ["## GPU pre-processing", "old", "### detail", "x"]


def test_node_benchmark_headline_keys_and_ideal_rate():
    from trt_infer.bench import node as bench_node

    results = {"rate_hz": 60.0, "simulated_inference_ms": 40.0, "machine": {"cores": 2},
               "node": {"throughput_hz": 24.0, "median_ms": 50.0, "p95_ms": 60.0, "cpu_ms_per_frame": 1.2,
                        "drops": 0.6}}
    figures = bench_node.headline(results)
    assert set(figures) >= {"throughput_hz", "ideal_hz", "latency_median_ms", "latency_p95_ms",
                            "simulated_inference_ms", "cpu_ms_per_frame"}
    assert figures["ideal_hz"] == pytest.approx(25.0)
    results["simulated_inference_ms"] = 10.0
    assert bench_node.headline(results)["ideal_hz"] == pytest.approx(60.0)
    results["simulated_inference_ms"] = None
    assert bench_node.headline(results)["ideal_hz"] == pytest.approx(60.0)


def test_node_benchmark_reads_a_process_cpu_time():
    from trt_infer.bench import node as bench_node

    before = bench_node.process_cpu_seconds(os.getpid())
    sum(index * index for index in range(2000000))
    assert bench_node.process_cpu_seconds(os.getpid()) >= before >= 0
