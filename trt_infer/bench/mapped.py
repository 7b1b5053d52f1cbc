"""What reading an engine output costs the CPU: mapped pinned memory, a cached copy of it, a pinned copy.

    python -m trt_infer.bench.mapped --out DIR      # on a machine with a GPU: DIR/mapped.json + DIR/mapped.md

The backend's choice per buffer (trt_infer.backends.cuda_buffers.HostDeviceBuffer, cpu_reads)
rests on this. For each output size the GPU writes the buffer (cuMemsetD32 on the stream, as an
engine's last layer would), then the CPU reads it the way post-processing does: once in order
(a sum) and once out of order (a gather through a fixed random permutation, like SSD decoding
picking anchors). Three ways, each timed from the GPU's write to the last CPU read:
  mapped_direct  mapped pinned memory (zero-copy), read in place
  mapped_copy    the same mapped pages copied once into an ordinary (cached) array, read there
  pinned_copy    device memory, cuMemcpyDtoHAsync into pinned host memory, read there
`read_ms` is the CPU's part alone (copy + reads), `total_ms` includes the GPU write and transfer.
Medians of --repeats runs. On a discrete GPU mapped memory is ordinary cached host memory behind
PCIe; on Jetson it is the shared DRAM, which the Nano's CPU does not cache when pinned: run this on
the device to see its figures (docs/benchmarks.md says which machine produced which).
"""
import argparse
import datetime
import json
import os
import sys
import time

import numpy as np

from trt_infer import cli_logging
from trt_infer.bench import machine as machine_info

# (name, float32 elements): the outputs trt_infer's tasks read on the CPU
OUTPUTS = (("EfficientNMS boxes 100x4", 100 * 4), ("SSD scores 1917x91", 1917 * 91),
           ("segmentation logits 21x256x512", 21 * 256 * 512))
WAYS = ("mapped_direct", "mapped_copy", "pinned_copy")


def _read(array, permutation):
    """Post-processing's two access patterns: in order, and out of order."""
    flat = array.reshape(-1)
    return float(flat.sum()) + float(flat[permutation].sum())


def measure(context, elements, repeats):
    """{way: {"read_ms", "total_ms"}} for one output of `elements` float32 values."""
    import pycuda.driver as cuda

    stream = context.stream()
    permutation = np.random.RandomState(0).permutation(elements)
    mapped = context.buffer((elements,), np.float32, mapped=True)
    device = context.buffer((elements,), np.float32, mapped=False)
    cached = np.empty(elements, np.float32)
    rows = {}
    for way in WAYS:
        reads, totals = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            with context.activate():
                target = device.device_ptr if way == "pinned_copy" else mapped.device_ptr
                cuda.memset_d32_async(target, 0x3F800000, elements, stream.cuda_stream)   # 1.0f
                if way == "pinned_copy":
                    device.download(stream)
                stream.cuda_stream.synchronize()
            written = time.perf_counter()
            if way == "mapped_direct":
                value = _read(mapped.host, permutation)
            elif way == "mapped_copy":
                np.copyto(cached, mapped.host)
                value = _read(cached, permutation)
            else:
                value = _read(device.host, permutation)
            done = time.perf_counter()
            if value != 2.0 * elements:
                raise AssertionError("{}: read {} instead of {}".format(way, value, 2.0 * elements))
            reads.append((done - written) * 1e3)
            totals.append((done - start) * 1e3)
        rows[way] = {"read_ms": float(np.median(reads)), "total_ms": float(np.median(totals))}
    for buffer in (mapped, device, stream):
        context.free(buffer)
    return rows


def machine(context):
    import pycuda
    import pycuda.driver as cuda

    return machine_info.machine(gpu=context.name, compute_capability="{}.{}".format(*context.compute_capability),
                                integrated=context.is_integrated(), cuda_driver=cuda.get_driver_version(),
                                pycuda=pycuda.VERSION_TEXT)


def run(out_dir, repeats, argv=None):
    from trt_infer.backends.cuda_buffers import CudaContext

    context = CudaContext(0, mapped=True)
    try:
        info = machine(context)
        print("machine: " + json.dumps(info))
        rows = []
        for name, elements in OUTPUTS:
            row = {"output": name, "bytes": elements * 4}
            for way, figures in measure(context, elements, repeats).items():
                row.update(("{}_{}".format(way, key), value) for key, value in figures.items())
            rows.append(row)
    finally:
        context.close()
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": "python -m trt_infer.bench.mapped " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": info, "repeats": repeats, "rows": rows}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "mapped.json"), "w") as handle:
        json.dump(result, handle, indent=2)
    with open(os.path.join(out_dir, "mapped.md"), "w") as handle:
        handle.write(report(result))
    print(report(result))
    return result


def report(result):
    """The markdown table of a mapped.json."""
    info = result["machine"]
    lines = ["# Reading an output on the CPU: mapped vs copies", "",
             "{} (sm {}, {}), {} x {}, {}; Python {}, pycuda {}. Command: `{}`; medians of {} runs.".format(
                 info["gpu"], info["compute_capability"], "integrated" if info["integrated"] else "discrete",
                 info["cores"], info["cpu"], result["date"], info["python"], info["pycuda"], result["command"],
                 result["repeats"]), "",
             "| output | bytes | " + " | ".join("{} read ms | {} total ms".format(way, way) for way in WAYS) + " |",
             "|---|---|" + "---|---|" * len(WAYS)]
    for row in result["rows"]:
        cells = ["{:.4f} | {:.4f}".format(row[way + "_read_ms"], row[way + "_total_ms"]) for way in WAYS]
        lines.append("| {} | {} | {} |".format(row["output"], row["bytes"], " | ".join(cells)))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m trt_infer.bench.mapped", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for mapped.json and mapped.md")
    parser.add_argument("--repeats", type=int, default=50)
    cli_logging.add_logging_arguments(parser)
    args = parser.parse_args(argv)
    cli_logging.configure(parser.prog, verbose=args.verbose, quiet=args.quiet)
    run(args.out, args.repeats, argv)


if __name__ == "__main__":
    main()
