"""The main job on embedded defaults: real models, real conversion, the real node over real DDS.

1. Takes MediaPipe's BlazeFace face detector and selfie segmentation model (TFLite files shipped
   inside mediapipe==0.10.21) and runs `convert all --target jetson-nano` on each.
2. For each, starts `trt_infer_node` (ONNX Runtime backend, the repo's config/detector.yaml or
   config/segmenter.yaml), feeds it scikit-image sample images with the `replay` tool and records
   what the node publishes, in a separate process, over Fast DDS on loopback.
3. Writes to the output folder: overlay images, masks, the received Detection2DArray messages as
   JSON, the node's statistics, and summary.md / summary.json.

Usage: .venv/bin/python tools/demo.py [--out output/demo] [--images astronaut,chelsea,coffee]
(tools/demo.sh sets up the environment first.)
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from tests.support.models import mediapipe_model  # noqa: E402
from tests.support.ros_env import ros_environment  # noqa: E402

DEFAULT_IMAGES = "astronaut,chelsea,coffee,camera"
MODELS = [  # mediapipe model, the node's params file
    ("blazeface", "config/detector.yaml"),
    ("selfie_segmentation", "config/segmenter.yaml"),
]
NODE_READY_TIMEOUT = 60.0
SUMMARY_STATISTICS = ("stage_preprocess", "stage_inference", "stage_postprocess", "processing", "latency")
DDS_PROFILE = os.path.join(REPO_ROOT, "config", "fastdds_large_images.xml")


def say(text):
    print("[demo] " + text, flush=True)


def convert(model, out_dir):
    """`convert all --target jetson-nano`; returns the fixed ONNX path. Prints the converter's summary."""
    source = mediapipe_model(model)
    say("convert all {} --target jetson-nano -o {}".format(os.path.relpath(source, REPO_ROOT), out_dir))
    subprocess.run([sys.executable, "-m", "converter", "all", source, "--target", "jetson-nano", "-o", out_dir],
                   cwd=REPO_ROOT, check=True)
    stem = os.path.splitext(os.path.basename(source))[0]
    return os.path.join(out_dir, stem + ".fixed.onnx")


def start(args, env, log_path):
    log = open(log_path, "w")
    return subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True), log


def stop(process, timeout=15.0):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def run_model(name, params_file, onnx_path, images, out_dir):
    """Node + recorder + replay for one model; returns what was recorded, frame by frame.

    Camera images travel best effort, so a frame can be lost on a loaded machine; the replay tool
    therefore loops over the images until the node has answered each one at least once.
    """
    env = ros_environment()
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = DDS_PROFILE  # as on a robot: whole images through shared memory
    os.makedirs(out_dir, exist_ok=True)
    node, node_log = start([sys.executable, "-m", "trt_infer.ros.node", "--ros-args",
                            "--params-file", params_file, "-p", "backend:=onnxruntime",
                            "-p", "onnx_path:=" + onnx_path, "-p", "publish_overlay:=true"],
                           env, os.path.join(out_dir, "node.log"))
    recorder, recorder_log = start([sys.executable, os.path.join("tools", "demo_recorder.py"), "--out", out_dir],
                                   env, os.path.join(out_dir, "recorder.log"))
    replay = subprocess.Popen(
        [sys.executable, "-m", "trt_infer.ros.replay", "skimage:" + ",".join(images), "--rate", "2", "--loop",
         "--print-stamps", "--wait", str(NODE_READY_TIMEOUT)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        start_new_session=True)
    sent = []  # (stamp, image) in publishing order
    reader = threading.Thread(target=read_stamps, args=(replay.stdout, images, sent), daemon=True)
    reader.start()
    say("{}: node, recorder and replay started (logs in {})".format(name, os.path.relpath(out_dir, REPO_ROOT)))
    deadline = time.monotonic() + NODE_READY_TIMEOUT + 20 * len(images)
    try:
        while not answered_every_image(out_dir, images, sent):
            for process, what in ((node, "trt_infer_node"), (recorder, "the recorder"), (replay, "replay")):
                if process.poll() is not None:
                    raise RuntimeError("{} stopped early (exit {}): see the logs in {}".format(
                        what, process.returncode, out_dir))
            if time.monotonic() > deadline:
                raise RuntimeError("no answer from the node for every image in time: see {}".format(out_dir))
            time.sleep(0.5)
    finally:
        stop(replay)
        recorder_status = stop(recorder)
        node_status = stop(node)
        node_log.close()
        recorder_log.close()
    if node_status not in (0, -signal.SIGINT) or recorder_status not in (0, -signal.SIGINT):
        raise RuntimeError("trt_infer_node exited with {}, the recorder with {}: see the logs in {}".format(
            node_status, recorder_status, out_dir))
    return name_frames(out_dir, sent, model_labels(params_file))


def model_labels(params_file):
    """The class labels of the model spec that a node params file names."""
    import yaml

    from trt_infer.spec import load_spec

    with open(os.path.join(REPO_ROOT, params_file)) as handle:
        parameters = yaml.safe_load(handle)["/**"]["ros__parameters"]
    return load_spec(os.path.join(REPO_ROOT, parameters["model_spec"])).labels


def read_stamps(stream, images, sent):
    """Collect replay's 'stamp <sec> <nanosec> <frame_id>' lines; the images go round in order."""
    for line in stream:
        if line.startswith("stamp "):
            sec, nanosec = line.split()[1:3]
            sent.append(("{}.{:09d}".format(sec, int(nanosec)), images[len(sent) % len(images)]))


def recorded_frames(out_dir):
    path = os.path.join(out_dir, "recorded.json")
    if not os.path.isfile(path):
        return {"frames": [], "statistics": {}}
    with open(path) as handle:
        return json.load(handle)


def complete(frame):
    """The node's whole answer to one image arrived: the overlay and the detections or the mask."""
    return "overlay" in frame["files"] and ("detections" in frame or "mask" in frame["files"])


def answered_every_image(out_dir, images, sent):
    answered = {frame["stamp"] for frame in recorded_frames(out_dir)["frames"] if complete(frame)}
    return set(images) <= {image for stamp, image in list(sent) if stamp in answered}


def name_frames(out_dir, sent, labels):
    """The first answered frame of each image, its files named after the image; the rest is removed."""
    recorded = recorded_frames(out_dir)
    by_stamp = {frame["stamp"]: frame for frame in recorded["frames"]}
    frames = {}
    for stamp, image in sent:
        frame = by_stamp.get(stamp)
        if frame is None or image in frames or not complete(frame):
            continue
        del by_stamp[stamp]
        for kind, file_name in sorted(frame["files"].items()):
            named = "{}_{}.png".format(image, kind)
            os.replace(os.path.join(out_dir, file_name), os.path.join(out_dir, named))
            frame["files"][kind] = named
        frame["image"] = image
        frame["result"] = describe(frame, labels)
        frames[image] = frame
    for frame in by_stamp.values():
        for file_name in frame["files"].values():
            os.remove(os.path.join(out_dir, file_name))
    record = {"frames": [frames[image] for image, _ in sorted(frames.items())], "statistics": recorded["statistics"],
              "images_sent": len(sent)}
    with open(os.path.join(out_dir, "recorded.json"), "w") as handle:
        json.dump(record, handle, indent=1)
    return record


def describe(frame, labels):
    """One line for the summary table: what the node found in this frame."""
    if "mask_classes" in frame:
        total = float(sum(frame["mask_classes"].values()))
        shares = ", ".join("{} {:.0%}".format(labels[int(value)], count / total)
                           for value, count in sorted(frame["mask_classes"].items()))
        return "mask: " + shares
    detections = frame.get("detections", [])
    if not detections:
        return "no detections"
    return "; ".join(describe_detection(detection) for detection in detections)


def describe_detection(detection):
    hypothesis = detection["results"][0]
    label = hypothesis["hypothesis"]["class_id"] if "hypothesis" in hypothesis else hypothesis["id"]
    score = hypothesis["hypothesis"]["score"] if "hypothesis" in hypothesis else hypothesis["score"]
    center = detection["bbox"]["center"]
    point = center.get("position", center)
    return "{} {:.2f} at ({:.0f}, {:.0f}) {:.0f}x{:.0f} px".format(
        label, score, point["x"], point["y"], detection["bbox"]["size_x"], detection["bbox"]["size_y"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "output", "demo"))
    parser.add_argument("--images", default=DEFAULT_IMAGES, help="scikit-image sample names, comma separated")
    parser.add_argument("--readme-pictures", action="store_true",
                        help="also refresh the README's pictures (docs/images) from this run's overlays")
    args = parser.parse_args(argv)
    images = [name for name in args.images.split(",") if name]
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        shutil.rmtree(out)
    started = time.time()
    summary = {}
    for name, params_file in MODELS:
        onnx_path = convert(name, os.path.join(out, "models", name))
        summary[name] = run_model(name, params_file, onnx_path, images, os.path.join(out, name))
    write_summary(out, summary, images, time.time() - started)
    if args.readme_pictures:
        write_readme_pictures(out)
    return 0


README_PICTURES = [("blazeface", "astronaut"), ("blazeface", "camera"),
                   ("selfie_segmentation", "astronaut"), ("selfie_segmentation", "camera")]


def write_readme_pictures(out, width=320):
    import cv2

    folder = os.path.join(REPO_ROOT, "docs", "images")
    os.makedirs(folder, exist_ok=True)
    for model, image in README_PICTURES:
        overlay = cv2.imread(os.path.join(out, model, image + "_overlay.png"))
        height = width * overlay.shape[0] // overlay.shape[1]
        path = os.path.join(folder, "{}_{}.jpg".format(model.split("_")[0], image))
        cv2.imwrite(path, cv2.resize(overlay, (width, height), interpolation=cv2.INTER_AREA),
                    [cv2.IMWRITE_JPEG_QUALITY, 85])
        say("README picture " + os.path.relpath(path, REPO_ROOT))


def write_summary(out, summary, images, seconds):
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=1, sort_keys=True)
    lines = ["# trt_infer main job", "",
             "MediaPipe models converted with `convert all --target jetson-nano`, run by `trt_infer_node` "
             "(ONNX Runtime backend, CPU) on scikit-image samples sent by `replay` over Fast DDS.", "",
             "| model | image | result |", "|---|---|---|"]
    for name, record in summary.items():
        for frame in record["frames"]:
            lines.append("| {} | {} | {} |".format(name, frame["image"], frame["result"]))
    lines += ["", "Node statistics, medians in ms (from its `statistics` topic; `stage_inference` is the network "
              "alone, `processing` is end to end inside the node, `latency` is publish time - image stamp):", "",
              "| model | " + " | ".join(SUMMARY_STATISTICS) + " | frames processed by the last statistics message |",
              "|---" * (len(SUMMARY_STATISTICS) + 2) + "|"]
    for name, record in summary.items():
        statistics = record["statistics"]
        lines.append("| {} | {} | {} |".format(name, " | ".join(
            statistics.get(key + "_ms_median", "-") for key in SUMMARY_STATISTICS),
            statistics.get("frames_processed", "-")))
    with open(os.path.join(out, "summary.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    say("done in {:.0f} s; outputs in {}:".format(seconds, os.path.relpath(out, REPO_ROOT)))
    for root, _, files in sorted(os.walk(out)):
        if "models" in os.path.relpath(root, out).split(os.sep):
            continue
        for file_name in sorted(files):
            if file_name.endswith((".png", ".json", ".md")):
                say("  " + os.path.relpath(os.path.join(root, file_name), REPO_ROOT))
    print(open(os.path.join(out, "summary.md")).read())


if __name__ == "__main__":
    sys.exit(main())
