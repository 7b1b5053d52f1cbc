"""Benchmark of the fused GPU pre-processing against the CPU path and PyTorch on the same GPU.

    python -m trt_infer.bench.gpu --out DIR            # on a machine with a GPU: DIR/gpu.json
    python -m trt_infer.bench.gpu --report DIR/gpu.json --out DIR   # gpu.md + gpu.png from it

For each camera size (BGR uint8 -> 300x300 NCHW float32, stretch) it measures in one run:
  cpu          the runtime's CPU Preprocessor (trt_infer.preprocess), wall clock
  gpu          GpuPreprocessor from the pageable image (upload straight from it, then the kernel),
               wall clock to the stream's end; also through pinned staging (host copy + DMA), and
               CUDA events over the upload from pinned memory + kernel
  kernel       the kernel alone (image already on the device), CUDA events over back-to-back
               launches queued behind a spinning kernel (launch overhead hidden)
  torch        PyTorch on the GPU: the same pinned upload, permute, F.interpolate(bilinear,
               align_corners=False), channel flip, normalise; wall clock and CUDA events
and the device-to-device copy bandwidth, from which the kernel's memory-bandwidth bound is
(bytes it must read + bytes it writes) / bandwidth. Medians of --repeats runs after warm-up.
"""
import argparse
import datetime
import json
import logging
import os
import sys
import time

import numpy as np

from trt_infer import cli_logging
from trt_infer.bench import machine as machine_info

logger = logging.getLogger(__name__)

SIZES = ((1920, 1080), (640, 480))
NET = 300
MEAN, STD = [127.5] * 3, [127.5] * 3


def median_wall_ms(call, repeats, synchronize=lambda: None):
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize()
        samples.append((time.perf_counter() - start) * 1e3)
    return float(np.median(samples))


def camera_image(width, height):
    """A real photo (scikit-image's coffee) at the camera size, or noise when it is absent."""
    import cv2
    try:
        from skimage import data
        return cv2.resize(np.ascontiguousarray(data.coffee()[:, :, ::-1]), (width, height))
    except ImportError:
        return np.random.RandomState(0).randint(0, 256, (height, width, 3)).astype(np.uint8)


def copy_bandwidth(context, nbytes=1 << 28, repeats=20):
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written."""
    import pycuda.driver as cuda
    with context.activate():
        source, target = cuda.mem_alloc(nbytes), cuda.mem_alloc(nbytes)
        start, end = cuda.Event(), cuda.Event()
        cuda.memcpy_dtod(target, source, nbytes)
        start.record()
        for _ in range(repeats):
            cuda.memcpy_dtod_async(target, source, nbytes)
        end.record()
        end.synchronize()
        seconds = start.time_till(end) / 1e3 / repeats
        source.free()
        target.free()
    return 2.0 * nbytes / seconds


def bytes_touched(width, height, channels=3):
    """Bytes of the image a bilinear 300x300 resample reads (the rows it samples, whole), and writes."""
    rows = set()
    scale = float(height) / NET
    for y in range(NET):
        f = (y + 0.5) * scale - 0.5
        i = min(max(int(np.floor(f)), 0), height - 1)
        rows.update((i, min(i + 1, height - 1)))
    return len(rows) * width * channels, NET * NET * 3 * 4


HOLD_SOURCE = r"""
extern "C" __global__ void hold(long long cycles)
{
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


def event_ms(stream, call, repeats, context=None):
    """CUDA-event milliseconds per call over `repeats` calls queued back to back on `stream`.
    With `context`, a spinning kernel holds the stream first, so Python's launch overhead is
    hidden and the events time the GPU's work alone."""
    import pycuda.driver as cuda
    if context is not None:
        from pycuda.compiler import SourceModule
        hold = context.cached(("bench", "hold"), lambda: SourceModule(HOLD_SOURCE, no_extern_c=True))
        hold.get_function("hold")(np.int64(5 * 10 ** 7), block=(1, 1, 1), grid=(1, 1), stream=stream)
    start, end = cuda.Event(), cuda.Event()
    start.record(stream)
    for _ in range(repeats):
        call()
    end.record(stream)
    end.synchronize()
    return start.time_till(end) / repeats


def bench_size(context, width, height, repeats):
    from trt_infer.cuda.preprocess import GpuPreprocessor
    from trt_infer.preprocess import Preprocessor
    from trt_infer.spec import InputSpec
    spec = InputSpec({"name": "x", "width": NET, "height": NET, "layout": "NCHW", "color_order": "RGB",
                      "scale": 1.0, "mean": MEAN, "std": STD, "resize": "stretch", "pad_value": 0.0,
                      "dtype": "float32"})
    image = camera_image(width, height)
    cpu = Preprocessor(spec)
    gpu = GpuPreprocessor(spec, context)
    out = gpu.buffer.device_ptr
    for _ in range(10):
        cpu(image)
        gpu(image)
    gpu.stream.synchronize()
    row = {"image": "{}x{}".format(width, height)}
    row["cpu_ms"] = median_wall_ms(lambda: cpu(image), repeats)
    row["gpu_wall_ms"] = median_wall_ms(lambda: gpu(image), repeats, gpu.stream.synchronize)

    def through_pinned():
        np.copyto(staging.host, image)
        gpu(staging.host)
    staging = gpu.staging(image.shape)
    row["gpu_pinned_copy_wall_ms"] = median_wall_ms(through_pinned, repeats, gpu.stream.synchronize)
    stream = gpu.stream.cuda_stream
    np.copyto(staging.host, image)  # the host copy is in gpu_wall_ms; events time the device's part
    with context.activate():
        row["gpu_events_ms"] = float(np.median([event_ms(stream, lambda: gpu(staging.host), 1)
                                                for _ in range(repeats)]))
        # at most a few hundred launches: the driver's launch queue (about a thousand entries)
        # must hold them all while the spinning kernel runs
        row["kernel_ms"] = float(np.median([event_ms(stream, lambda: gpu.enqueue(image.shape, out), 200, context)
                                            for _ in range(5)]))
        row["kernel_launch_bound_ms"] = event_ms(stream, lambda: gpu.enqueue(image.shape, out), 200)
        row["upload_ms"] = event_ms(stream, lambda: staging.upload(gpu.stream), repeats)
    read, written = bytes_touched(width, height)
    row.update(bytes_read=read, bytes_written=written, image_bytes=image.nbytes)
    row.update(torch_rows(image, repeats))
    gpu.stream.synchronize()
    return row


def torch_rows(image, repeats):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    device = torch.device("cuda")
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    pinned = torch.empty(image.shape, dtype=torch.uint8).pin_memory()
    pinned_view = pinned.numpy()
    stream = torch.cuda.current_stream()

    def sequence():
        stream.synchronize()  # the pinned staging may be overwritten only after the last upload
        np.copyto(pinned_view, image)
        x = pinned.to(device, non_blocking=True).permute(2, 0, 1).unsqueeze(0).float()
        x = F.interpolate(x, size=(NET, NET), mode="bilinear", align_corners=False)
        return (x.flip(1) - mean) / std

    for _ in range(10):
        sequence()
    torch.cuda.synchronize()
    wall = median_wall_ms(sequence, repeats, torch.cuda.synchronize)
    events = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        sequence()
        end.record()
        end.synchronize()
        events.append(start.elapsed_time(end))
    return {"torch_wall_ms": wall, "torch_events_ms": float(np.median(events)), "torch": torch.__version__}


def machine(context):
    import cv2
    import pycuda
    import pycuda.driver as cuda

    return machine_info.machine(gpu=context.name, compute_capability="{}.{}".format(*context.compute_capability),
                                cuda_driver=cuda.get_driver_version(), opencv=cv2.__version__,
                                pycuda=pycuda.VERSION_TEXT)


def run(out_dir, repeats):
    from trt_infer.backends.cuda_buffers import CudaContext
    context = CudaContext(0, mapped=False)
    try:
        bandwidth = copy_bandwidth(context)
        rows = [bench_size(context, width, height, repeats) for width, height in SIZES]
        info = machine(context)
    finally:
        context.close()
    for row in rows:
        bound_ms = (row["bytes_read"] + row["bytes_written"]) / bandwidth * 1e3
        row.update(bound_ms=bound_ms, kernel_vs_bound=row["kernel_ms"] / bound_ms,
                   cpu_vs_gpu_wall=row["cpu_ms"] / row["gpu_wall_ms"])
        if "torch_wall_ms" in row:
            row["torch_vs_gpu_wall"] = row["torch_wall_ms"] / row["gpu_wall_ms"]
            row["torch_vs_gpu_events"] = row["torch_events_ms"] / row["gpu_events_ms"]
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": "python -m trt_infer.bench.gpu " + " ".join(sys.argv[1:]),
              "machine": info, "copy_bandwidth_GBps": bandwidth / 1e9, "repeats": repeats,
              "network_input": "{0}x{0} NCHW float32 RGB, (pixel - 127.5) / 127.5, stretch".format(NET),
              "rows": rows}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "gpu.json"), "w") as handle:
        json.dump(result, handle, indent=2)
    print(json.dumps(result, indent=2))
    return result


def report(result, out_dir):
    """gpu.md (table) and gpu.png (bar chart) from a gpu.json."""
    info = result["machine"]
    lines = ["# GPU pre-processing benchmark", "",
             "{} (sm {}), {} x {}, {}; Python {}, OpenCV {}, pycuda {}, PyTorch {}.".format(
                 info["gpu"], info["compute_capability"], info["cores"], info["cpu"], result["date"],
                 info["python"], info["opencv"], info["pycuda"], result["rows"][0].get("torch", "-")),
             "", "Command: `{}`. Network input: {}. Medians of {} runs; device copy bandwidth {:.0f} GB/s "
             "(read + written).".format(result["command"], result["network_input"], result["repeats"],
                                        result["copy_bandwidth_GBps"]), "",
             "| image | CPU ms | GPU wall ms | GPU wall via pinned ms | GPU events ms (pinned upload+kernel) "
             "| upload ms | kernel ms | bound ms | kernel / bound | PyTorch wall ms | CPU / GPU (wall) "
             "| PyTorch / GPU (wall) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append("| {image} | {cpu_ms:.3f} | {gpu_wall_ms:.3f} | {gpu_pinned_copy_wall_ms:.3f} "
                     "| {gpu_events_ms:.3f} | {upload_ms:.3f} | {kernel_ms:.4f} | {bound_ms:.4f} "
                     "| {kernel_vs_bound:.1f}x | {tw} | {cpu_vs_gpu_wall:.1f}x | {tr} |".format(
                         tw=_fmt(row.get("torch_wall_ms")), tr=_fmt(row.get("torch_vs_gpu_wall"), "{:.2f}x"), **row))
    with open(os.path.join(out_dir, "gpu.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    series = [("CPU Preprocessor", "cpu_ms"), ("PyTorch GPU", "torch_wall_ms"), ("fused kernel (wall)", "gpu_wall_ms"),
              ("fused kernel (upload+kernel)", "gpu_events_ms"), ("kernel alone", "kernel_ms")]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(series)
    for index, (label, key) in enumerate(series):
        values = [row.get(key, np.nan) for row in result["rows"]]
        axes.bar(np.arange(len(result["rows"])) + index * width, values, width, label=label)
    axes.set_yscale("log")
    axes.set_xticks(np.arange(len(result["rows"])) + 0.4 - width / 2)
    axes.set_xticklabels(["{} BGR -> 300x300".format(row["image"]) for row in result["rows"]])
    axes.set_ylabel("milliseconds (log)")
    axes.set_title("Pre-processing on {} ({})".format(info["gpu"], result["date"][:10]))
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(out_dir, "gpu.png"), dpi=120)


def _fmt(value, pattern="{:.3f}"):
    return "-" if value is None else pattern.format(value)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m trt_infer.bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu.json (and gpu.md, gpu.png with --report)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--report", help="a gpu.json to turn into gpu.md and gpu.png instead of measuring")
    cli_logging.add_logging_arguments(parser)
    args = parser.parse_args(argv)
    cli_logging.configure(parser.prog, verbose=args.verbose, quiet=args.quiet)
    if args.report:
        with open(args.report) as handle:
            result = json.load(handle)
        os.makedirs(args.out, exist_ok=True)
        report(result, args.out)
        return
    result = run(args.out, args.repeats)
    try:
        report(result, args.out)
    except ImportError:
        logger.warning("matplotlib missing: make gpu.md/gpu.png elsewhere with --report %s",
                       os.path.join(args.out, "gpu.json"))


if __name__ == "__main__":
    main()
