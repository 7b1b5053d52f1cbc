"""Node overhead benchmark in the style of ros2_benchmark (not a test).

    python -m trt_infer.bench.node --onnx model.onnx [--config config/detector.yaml] [--out output/bench_node]

Needs a ROS 2 environment with vision_msgs. In one run, on the same 640x480 bgr8 images:
  relay     the raw DDS round trip: images go to a relay node that publishes them straight back
            (the transport floor);
  node      trt_infer_node: image in, Detection2DArray out; latency = receive time - header.stamp;
  inference the backend's bare `infer()` time, and the whole pipeline's, in this process.
For relay and node: fixed rate (default 30 Hz: median, p95, drops) and the peak rate with < 5 %
drops (rates stepped up until drops exceed that). Writes results.json, results.md (table) and
latency.png under --out and prints the table. --config and the model spec it names are found
from the working directory, the source tree or the installed share/trt_infer.

--simulate-inference-ms T runs the node over a STAND-IN (trt_infer/backends/simulated.py, enabled
in the node's process only, by an environment variable only this benchmark sets): every inference
is held for T ms without holding the GIL, as a Jetson Nano's TensorRT does, and returns the real
model's outputs of the first frame. The node's process CPU time per processed frame (from
/proc/<pid>/stat over the fixed-rate run) is then its Python work alone. --json OUT.json writes
the headline figures: throughput_hz, ideal_hz (= min(rate, 1000 / T)), latency_median_ms,
latency_p95_ms, simulated_inference_ms, cpu_ms_per_frame.

The one module outside trt_infer/ros/ that uses rclpy (it drives the node over DDS); rclpy and the
ROS adapter are imported inside the functions that need them, so importing this module does not
need ROS.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

from trt_infer import cli_logging
from trt_infer.bench import machine as machine_info
from trt_infer.paths import resolve_path

WIDTH, HEIGHT = 640, 480
PEAK_RATES = (30, 60, 90, 120, 180, 240, 320)
DROP_LIMIT = 0.05


def relay_main(reliability):
    """A node that republishes every image it gets, unchanged, on `relayed`."""
    import rclpy
    from sensor_msgs.msg import Image

    from trt_infer.ros.node import shutdown_quietly
    from trt_infer.ros.qos import image_qos

    rclpy.init()
    node = rclpy.create_node("relay")
    publisher = node.create_publisher(Image, "relayed", image_qos(reliability))
    node.create_subscription(Image, "image", publisher.publish, image_qos(reliability))
    try:
        rclpy.spin(node)
    except Exception:  # noqa: BLE001 - SIGINT ends the relay; how depends on the distro
        pass
    finally:
        node.destroy_node()
        shutdown_quietly()


class Driver(object):
    """Publishes stamped images and records when the matching answer (same stamp) comes back."""

    def __init__(self, node, frame, reliability):
        from trt_infer.ros.qos import image_qos
        from trt_infer.ros.replay import ImagePublisher

        self.node = node
        self.publisher = ImagePublisher(node, "image", "bgr8", image_qos(reliability), size=(WIDTH, HEIGHT))
        self.frame = frame
        self.arrivals = {}
        self.lock = threading.Lock()

    def on_answer(self, message):
        now = self.node.get_clock().now().nanoseconds
        stamp = message.header.stamp.sec * 1000000000 + message.header.stamp.nanosec
        with self.lock:
            self.arrivals[stamp] = now

    def run(self, rate, seconds):
        """Publish at `rate` for `seconds`; latencies (s) of answered frames and the drop fraction."""
        with self.lock:
            self.arrivals = {}
        sent = []
        period = 1.0 / rate
        deadline = time.monotonic()
        for _ in range(int(rate * seconds)):
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stamp = self.publisher.publish(self.frame).header.stamp
            sent.append(stamp.sec * 1000000000 + stamp.nanosec)
            deadline += period
        time.sleep(0.5)  # answers still on their way
        with self.lock:
            latencies = [(self.arrivals[stamp] - stamp) / 1e9 for stamp in sent if stamp in self.arrivals]
        return latencies, 1.0 - len(latencies) / float(len(sent))


def summarise(latencies, drops):
    values = np.array(latencies, dtype=np.float64) * 1000.0
    return {"median_ms": float(np.median(values)) if len(values) else None,
            "p95_ms": float(np.percentile(values, 95)) if len(values) else None,
            "answered": len(values), "drops": drops}


def process_cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far, all its threads (Linux /proc)."""
    with open("/proc/{}/stat".format(pid)) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # after the command name: state is field 3, utime 14 and stime 15 (1-based, proc(5))
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def measure(driver, rate, seconds, pid=None):
    driver.publisher.wait_for_subscriber(10.0)
    driver.run(rate, 1.0)  # warm up: discovery, first-call allocations
    cpu_before = process_cpu_seconds(pid) if pid is not None else None
    latencies, drops = driver.run(rate, seconds)
    fixed = summarise(latencies, drops)
    fixed["throughput_hz"] = len(latencies) / float(seconds)
    if pid is not None:
        # includes the 0.5 s the driver waits for late answers, in which the node is idle
        fixed["cpu_seconds"] = process_cpu_seconds(pid) - cpu_before
        fixed["cpu_ms_per_frame"] = 1000.0 * fixed["cpu_seconds"] / len(latencies) if latencies else None
    fixed["latencies_ms"] = [1000.0 * value for value in latencies]
    peak = None
    for peak_rate in PEAK_RATES:
        _, peak_drops = driver.run(peak_rate, 2.0)
        if peak_drops >= DROP_LIMIT:
            break
        peak = peak_rate
    fixed["peak_rate_hz"] = peak
    return fixed


def model_spec_of(config):
    """The model spec the node params file names, found like the node finds it (here also in the
    source tree); the node is handed this path, so both sides time the same model."""
    import yaml

    with open(config) as handle:
        return resolve_path(yaml.safe_load(handle)["/**"]["ros__parameters"]["model_spec"])


def bare_inference(spec_path, onnx, frame, runs=200):
    from trt_infer.backends import load_backend
    from trt_infer.pipeline import Pipeline
    from trt_infer.spec import load_spec

    backend = load_backend(onnx, "onnxruntime")
    pipeline = Pipeline(load_spec(spec_path), backend)
    image = np.ascontiguousarray(__import__("cv2").resize(frame, (WIDTH, HEIGHT)))
    inference, total = [], []
    for _ in range(runs):
        pipeline(image)
        start = time.perf_counter()
        backend.infer()
        inference.append(time.perf_counter() - start)
        total.append(pipeline(image).timings["total"])
    backend.close()
    return {"inference_median_ms": 1000.0 * float(np.median(inference)),
            "inference_p95_ms": 1000.0 * float(np.percentile(inference, 95)),
            "pipeline_median_ms": 1000.0 * float(np.median(total))}


def _start(module_args, env):
    return subprocess.Popen([sys.executable, "-m"] + module_args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)


def _stop(process):
    import signal

    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def run_benchmark(args):
    import rclpy
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from trt_infer.ros.qos import image_qos, result_qos
    from trt_infer.ros.replay import skimage_frame

    frame = skimage_frame("astronaut")
    spec_path = model_spec_of(args.config)
    from trt_infer.backends.simulated import SIMULATE_VARIABLE

    results = {"machine": machine_info.machine(), "rate_hz": args.rate, "reliability": args.reliability,
               "seconds": args.seconds, "image": "640x480 bgr8",
               "simulated_inference_ms": args.simulate_inference_ms,
               "inference": bare_inference(spec_path, args.onnx, frame)}
    rclpy.init()
    node = rclpy.create_node("bench_node_driver")
    spinner = threading.Thread(target=rclpy.spin, args=(node,))
    spinner.daemon = True
    spinner.start()
    try:
        # each answer is subscribed with the QoS its publisher offers: images best effort, results reliable
        stages = (("relay", ["trt_infer.bench.node", "--relay", "--reliability", args.reliability], Image,
                   "relayed", image_qos(args.reliability)),
                  ("node", ["trt_infer.ros.node", "--ros-args", "--params-file", args.config,
                            "-p", "model_spec:=" + spec_path, "-p", "onnx_path:=" + args.onnx,
                            "-p", "backend:=onnxruntime", "-p", "input_reliability:=" + args.reliability],
                   Detection2DArray, "detections", result_qos()))
        for name, command, answer_type, topic, qos in stages:
            driver = Driver(node, frame, args.reliability)
            node.create_subscription(answer_type, topic, driver.on_answer, qos)
            env = os.environ.copy()
            env.pop(SIMULATE_VARIABLE, None)
            if name == "node" and args.simulate_inference_ms is not None:
                env[SIMULATE_VARIABLE] = repr(args.simulate_inference_ms)
            process = _start(command, env)
            try:
                results[name] = measure(driver, args.rate, args.seconds, pid=process.pid)
            finally:
                _stop(process)
                node.destroy_publisher(driver.publisher.publisher)
    finally:
        node.destroy_node()
        rclpy.try_shutdown() if hasattr(rclpy, "try_shutdown") else rclpy.shutdown()
    if results["relay"]["median_ms"] is None or results["node"]["median_ms"] is None:
        raise RuntimeError("no answers came back (relay: {relay}, node: {node}); is vision_msgs built and the "
                           "ROS environment set?".format(relay=results["relay"]["answered"],
                                                         node=results["node"]["answered"]))
    overhead = results["node"]["median_ms"] - results["inference"]["inference_median_ms"]
    results["goals"] = {
        "node_minus_inference_median_ms": overhead, "node_minus_inference_ok": overhead <= 2.0,
        "node_over_relay": results["node"]["median_ms"] / results["relay"]["median_ms"],
        "node_over_relay_ok": results["node"]["median_ms"] <= 1.5 * results["relay"]["median_ms"]}
    return results


def headline(results):
    """The figures --json writes (issue 15's goals are stated in these keys)."""
    node = results["node"]
    simulated = results["simulated_inference_ms"]
    ideal = results["rate_hz"] if not simulated else min(results["rate_hz"], 1000.0 / simulated)
    return {"throughput_hz": node["throughput_hz"], "ideal_hz": ideal,
            "latency_median_ms": node["median_ms"], "latency_p95_ms": node["p95_ms"],
            "simulated_inference_ms": simulated, "cpu_ms_per_frame": node["cpu_ms_per_frame"],
            "rate_hz": results["rate_hz"], "drops": node["drops"], "machine": results["machine"],
            "load_average": os.getloadavg()}


def table(results):
    rows = ["| {} images | median ms | p95 ms | drops at {} Hz | peak Hz (< 5 % drops) |".format(
        results["reliability"], results["rate_hz"]),
            "|---|---|---|---|---|"]
    for name in ("relay", "node"):
        item = results[name]
        rows.append("| {} | {:.2f} | {:.2f} | {:.1%} | {} |".format(
            "raw DDS round trip (relay)" if name == "relay" else "trt_infer_node (image -> detections)",
            item["median_ms"], item["p95_ms"], item["drops"], item["peak_rate_hz"]))
    inference = results["inference"]
    rows.append("| bare inference (backend.infer) | {:.2f} | {:.2f} | | |".format(
        inference["inference_median_ms"], inference["inference_p95_ms"]))
    rows.append("| whole pipeline in-process | {:.2f} | | | |".format(inference["pipeline_median_ms"]))
    if results["simulated_inference_ms"] is not None:
        figures = headline(results)
        rows.append("")
        rows.append("node over the inference STAND-IN ({:g} ms per call): {:.1f} Hz of {:.1f} ideal, latency median "
                    "{:.1f} ms, node CPU {:.2f} ms per frame".format(
                        figures["simulated_inference_ms"], figures["throughput_hz"], figures["ideal_hz"],
                        figures["latency_median_ms"], figures["cpu_ms_per_frame"] or float("nan")))
    goals = results["goals"]
    rows.append("")
    rows.append("node - bare inference: {:.2f} ms median (goal <= 2 ms: {}); node / relay: {:.2f}x (goal <= 1.5x: {})"
                .format(goals["node_minus_inference_median_ms"],
                        "met" if goals["node_minus_inference_ok"] else "missed",
                        goals["node_over_relay"], "met" if goals["node_over_relay_ok"] else "missed"))
    rows.append("machine: {cpu}, {cores} cores, {platform}, Python {python}".format(**results["machine"]))
    return "\n".join(rows)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, label in (("relay", "raw DDS round trip (relay)"), ("node", "trt_infer_node")):
        values = np.sort(results[name]["latencies_ms"])
        axis.plot(values, np.linspace(0, 1, len(values)), label=label)
    axis.axvline(results["inference"]["inference_median_ms"], linestyle="--", color="grey",
                 label="bare inference (median)")
    axis.set_xlabel("latency ms (receive - header.stamp), {} Hz 640x480 bgr8".format(results["rate_hz"]))
    axis.set_ylabel("fraction of frames")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m trt_infer.bench.node", description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", help="the model (ONNX Runtime backend)")
    parser.add_argument("--config", default="config/detector.yaml", help="node params file naming the model spec")
    parser.add_argument("--out", default="output/bench_node")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reliability", default="best_effort", choices=("best_effort", "reliable"),
                        help="image QoS of driver, relay and node (default: the node's default)")
    parser.add_argument("--simulate-inference-ms", type=float, default=None, metavar="T",
                        help="run the node over a stand-in that holds each inference T ms without the GIL "
                             "(a Nano's TensorRT) and returns the real model's outputs of the first frame")
    parser.add_argument("--json", default=None, metavar="OUT.json",
                        help="also write the headline figures (throughput_hz, ideal_hz, latency_median_ms, "
                             "latency_p95_ms, simulated_inference_ms, cpu_ms_per_frame) here")
    parser.add_argument("--relay", action="store_true", help=argparse.SUPPRESS)
    cli_logging.add_logging_arguments(parser)
    args = parser.parse_args(argv)
    cli_logging.configure(parser.prog, verbose=args.verbose, quiet=args.quiet)
    if args.relay:
        return relay_main(args.reliability)
    if not args.onnx:
        parser.error("--onnx is required")
    if args.simulate_inference_ms is not None and not args.simulate_inference_ms > 0:
        parser.error("--simulate-inference-ms must be > 0")
    args.config = resolve_path(args.config)
    results = run_benchmark(args)
    if not os.path.isdir(args.out):
        os.makedirs(args.out)
    text = table(results)
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write(text + "\n")
    plot(results, os.path.join(args.out, "latency.png"))
    for name in ("relay", "node"):
        results[name].pop("latencies_ms")
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(headline(results), handle, indent=2)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
