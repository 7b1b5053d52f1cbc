"""Runs every benchmark the project has and regenerates docs/benchmarks.md (+ PNG plots).

    bash tools/benchmarks.sh            (sets up the environment, then runs this)

- CPU pre/post-processing vs OpenCV references: `python -m trt_infer.bench`, run now.
- Node overhead vs the raw DDS round trip and bare inference: `python -m trt_infer.bench.node`,
  run now with MediaPipe's BlazeFace (ONNX Runtime backend) over Fast DDS on loopback.
- GPU pre-processing on an NVIDIA GPU: `python -m trt_infer.bench.gpu`, which needs pycuda and a
  GPU; its committed results (docs/benchmarks/gpu.json) are included with their own machine and date,
  and re-measured when this machine has a GPU.
Every section names its machine, command and date; ratios against references measured in the same
run come first, absolute times are labelled with the machine they were measured on.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

DOCS = os.path.join(REPO_ROOT, "docs")
FIGURES = os.path.join(DOCS, "benchmarks")


def run(command, env=None):
    print("[benchmarks] " + " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True)
    return " ".join(["python"] + command[1:])


def load(path):
    with open(path) as handle:
        return json.load(handle)


def cpu_section(out, iterations):
    command = run([sys.executable, "-m", "trt_infer.bench", "--iterations", str(iterations), "--out", out])
    results = load(os.path.join(out, "bench.json"))
    machine = results["machine"]
    lines = ["## CPU pre- and post-processing vs OpenCV", "",
             "Machine: {cpu}, {cores} cores; Python {python}, numpy {numpy}, OpenCV {opencv}. ".format(**machine) +
             "Command: `{}`. Date: {}. Ratio = ours / reference, same inputs, same run; "
             "below 1.0 is faster.".format(command.replace(out, "OUT"), today()), "",
             "| benchmark | ratio (median) | goal | ours median ms | reference | reference median ms | same answer |",
             "|---|---|---|---|---|---|---|"]
    for item in results["benchmarks"]:
        lines.append("| {} | **{:.2f}** | <= {:.1f} | {:.3f} | {} | {:.3f} | {} |".format(
            item["name"], item["ratio_median"], item["goal"], item["ours"]["median_ms"], item["reference_name"],
            item["reference"]["median_ms"], item["check"]))
    plot_ratios(results["benchmarks"], os.path.join(FIGURES, "cpu.png"))
    lines += ["", "![CPU ratios](benchmarks/cpu.png)", ""]
    return lines


NODE_TRANSPORTS = [  # (name, Fast DDS profile file or None, what it is)
    ("default", None, "Fast DDS defaults: images over 512 KiB go by fragmented UDP"),
    ("shm", os.path.join(REPO_ROOT, "config", "fastdds_large_images.xml"),
     "`config/fastdds_large_images.xml`: whole images through a 16 MiB shared-memory segment"),
]


def node_section(out, seconds):
    from tests.support.models import converted_for_target
    from tests.support.ros_env import ros_environment

    onnx_path = converted_for_target("blazeface")
    lines = ["## Node overhead (ros2_benchmark style)", ""]
    rows = []
    for name, profile, description in NODE_TRANSPORTS:
        env = ros_environment()
        if profile:
            env["FASTDDS_DEFAULT_PROFILES_FILE"] = profile
        run_out = os.path.join(out, name)
        command = run([sys.executable, "-m", "trt_infer.bench.node", "--onnx", onnx_path, "--seconds",
                       str(seconds), "--reliability", "reliable", "--out", run_out], env=env)
        results = load(os.path.join(run_out, "results.json"))
        shutil.copy(os.path.join(run_out, "latency.png"), os.path.join(FIGURES, "node_latency_{}.png".format(name)))
        rows.append((name, description, results))
    machine = rows[0][2]["machine"]
    first = rows[0][2]
    lines += ["Machine: {cpu}, {cores} cores, Python {python}. ".format(**machine) +
              "Command: `{}` (MediaPipe BlazeFace, ONNX Runtime on the CPU, Fast DDS on loopback), once per "
              "transport setting. Date: {}. {} Hz, {}, {} images, {} s per rate.".format(
                  command.replace(onnx_path, "blazeface.fixed.onnx").replace(run_out, "OUT"), today(),
                  first["rate_hz"], first["image"], first["reliability"], first["seconds"]), "",
              "| transport | node / raw DDS round trip (goal <= 1.5x) | node - bare inference (goal <= 2 ms) |",
              "|---|---|---|"]
    for name, description, results in rows:
        goals = results["goals"]
        lines.append("| {} | **{:.2f}x** | **{:.1f} ms** |".format(
            name, goals["node_over_relay"], goals["node_minus_inference_median_ms"]))
    lines += ["", "| transport | path | median ms | p95 ms | drops | peak Hz with < 5 % drops |",
              "|---|---|---|---|---|---|"]
    for name, description, results in rows:
        relay, node, inference = results["relay"], results["node"], results["inference"]
        lines += ["| {} | raw DDS round trip (relay: image there and back) | {:.2f} | {:.2f} | {:.1%} | {} |".format(
                      name, relay["median_ms"], relay["p95_ms"], relay["drops"], relay["peak_rate_hz"]),
                  "| {} | trt_infer_node (image in, detections out) | {:.2f} | {:.2f} | {:.1%} | {} |".format(
                      name, node["median_ms"], node["p95_ms"], node["drops"], node["peak_rate_hz"]),
                  "| {} | bare inference (`backend.infer`) | {:.2f} | {:.2f} | | |".format(
                      name, inference["inference_median_ms"], inference["inference_p95_ms"])]
    lines += ["", "Transports: " + "; ".join("**{}**: {}".format(name, description)
                                             for name, _, description in NODE_TRANSPORTS) + ".", "",
              "The node's latency includes one image hop over DDS (camera -> node) and one small message back; "
              "the relay's includes two image hops, so the 2 ms goal can only be approached when an image hop "
              "itself costs well under 2 ms.", ""]
    lines += ["![Node latency, {0}](benchmarks/node_latency_{0}.png)".format(name) for name, _, _ in NODE_TRANSPORTS]
    return lines + [""]


def gpu_section(out):
    committed = os.path.join(FIGURES, "gpu.json")
    try:
        import pycuda.driver  # noqa: F401
        run([sys.executable, "-m", "trt_infer.bench.gpu", "--out", FIGURES])
    except ImportError:
        print("[benchmarks] no pycuda here: the GPU section uses the committed {}".format(
            os.path.relpath(committed, REPO_ROOT)))
    results = load(committed)
    machine = results["machine"]
    lines = ["## GPU pre-processing (fused CUDA kernel)", "",
             "Machine: {gpu} (sm {compute_capability}), {cores} x {cpu}; Python {python}, OpenCV {opencv}, "
             "pycuda {pycuda}. ".format(**machine) +
             "Command: `{}`. Date: {}. Network input: {}.".format(
                 results["command"], results["date"][:10], results["network_input"]), "",
             "| image | kernel / bandwidth bound | PyTorch-on-GPU / ours (wall) | CPU path / ours (wall) | "
             "ours wall ms (upload + kernel) | CPU path ms | PyTorch ms |", "|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        lines.append("| {} | **{:.1f}x** (goal <= 3x) | **{:.2f}x** (goal >= 1) | **{:.1f}x** (goal >= 20x) | "
                     "{:.3f} | {:.3f} | {:.3f} |".format(
                         row["image"], row["kernel_vs_bound"], row["torch_vs_gpu_wall"], row["cpu_vs_gpu_wall"],
                         row["gpu_wall_ms"], row["cpu_ms"], row["torch_wall_ms"]))
    lines += ["", "Details and the discussion of the goals: [benchmarks/gpu.md](benchmarks/gpu.md).", "",
              "![GPU pre-processing](benchmarks/gpu.png)", ""]
    return lines


def gpu_check_section():
    """The run of tools/gpu_check.sh on the GPU machine: the GPU tests and the mapped-read benchmark. Its record
    (device, commands, test summary) is docs/benchmarks/gpu_check.md, its figures docs/benchmarks/mapped.json."""
    lines = ["## GPU check run (`bash tools/gpu_check.sh`)", "",
             "`tools/gpu_check.sh` runs on the GPU machine from a clean tree: it installs pycuda from the wheels "
             "carried in `.whl/` (or builds its sdist with `/usr/local/cuda/bin/nvcc`), runs "
             "`python3 -m pytest -m gpu tests` (with tests/test_gpu_threads.py: context and pipeline made on one "
             "thread, frames of changing sizes on another, device memory must not grow, no pycuda warning) and "
             "the GPU benchmarks, and leaves logs and results in `${OUT:-output/gpu}`. Its record goes to "
             "`docs/benchmarks/gpu_check.md` and its `gpu.json`/`mapped.json` to `docs/benchmarks/`; then "
             "`python tools/benchmark_report.py --only gpu` re-renders these sections.", ""]
    record = os.path.join(FIGURES, "gpu_check.md")
    if os.path.isfile(record):
        with open(record) as handle:
            lines += [handle.read().strip(), ""]
    else:
        lines += ["*Not run yet: the device, the commands, the test summary and the figures go here.*", ""]
    lines += ["### Reading an output on the CPU: mapped memory vs copies", "",
              "The TensorRT backend decides per buffer: inputs are mapped pinned memory on integrated GPUs (the "
              "CPU writes them once, in order); outputs the CPU reads are written by the GPU into mapped pages and "
              "copied once into ordinary cached memory after each call; outputs a GPU post-processor reads stay "
              "on the device; discrete GPUs use pinned memory with async copies. The reason: pinned memory on the "
              "Nano is not cached by the CPU (no I/O coherency), and post-processing reads outputs many times, "
              "out of order. Limits: the GPU machine is a discrete GPU, where mapped memory is cached host memory "
              "behind PCIe, so its figures show the cost of the extra copy, not the Nano's uncached reads; "
              "`python -m trt_infer.bench.mapped --out DIR` on the Nano itself is what confirms or overturns "
              "the choice.", ""]
    figures = os.path.join(FIGURES, "mapped.json")
    if os.path.isfile(figures):
        from trt_infer.bench.mapped import report
        lines += report(load(figures)).splitlines()[2:] + [""]
    else:
        lines += ["*Figures of `python -m trt_infer.bench.mapped` go here after the run.*", ""]
    return lines


def plot_ratios(benchmarks, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [item["name"] for item in benchmarks]
    ratios = [item["ratio_median"] for item in benchmarks]
    figure, axes = plt.subplots(figsize=(8, 0.6 * len(names) + 1.2))
    axes.barh(range(len(names)), ratios, color=["tab:green" if ratio <= 1 else "tab:red" for ratio in ratios])
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_yticks(range(len(names)))
    axes.set_yticklabels(names)
    axes.set_xlabel("time ours / OpenCV reference (median; < 1 is faster)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def today():
    return datetime.date.today().isoformat()


HEADER = ["# Benchmarks", "",
          "Generated by `bash tools/benchmarks.sh` (tools/benchmark_report.py); do not edit by hand. "
          "Benchmarks are not tests: each compares against a reference measured in the same run.", ""]


def sections_of(text):
    """The '## ' sections of a generated docs/benchmarks.md, in order, each as its list of lines."""
    sections = []
    for line in text.split("\n"):
        if line.startswith("## "):
            sections.append([])
        if sections:
            sections[-1].append(line)
    return sections


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "output", "benchmarks"),
                        help="raw results of this run")
    parser.add_argument("--iterations", type=int, default=1000, help="timed calls per CPU measurement")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per rate in the node benchmark")
    parser.add_argument("--only", choices=("gpu",),
                        help="gpu: re-render only the GPU sections from the committed docs/benchmarks/*.json "
                             "(figures measured on the GPU machine) and keep the other sections as they are")
    args = parser.parse_args(argv)
    os.makedirs(FIGURES, exist_ok=True)
    path = os.path.join(DOCS, "benchmarks.md")
    if args.only == "gpu":
        with open(path) as handle:
            kept = [section for section in sections_of(handle.read()) if not section[0].startswith("## GPU")]
        body = [line for section in kept for line in section]
    else:
        body = cpu_section(os.path.join(args.out, "cpu"), args.iterations)
        body += node_section(os.path.join(args.out, "node"), args.seconds)
    lines = HEADER + body + gpu_section(os.path.join(args.out, "gpu")) + gpu_check_section()
    with open(path, "w") as handle:
        handle.write("\n".join(lines))
    print("[benchmarks] wrote docs/benchmarks.md and the plots in docs/benchmarks/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
