"""Engines are tied to the TensorRT version and the GPU that built them: key, sidecar, checks.

An engine `model.engine` is written next to `model.engine.json` (the sidecar): the cache key and
its parts (ONNX sha256, TensorRT version, GPU name, compute capability, precision, input shapes),
the model spec digest, the build options, the date and the tool versions. Loading checks the
sidecar against the running TensorRT and GPU and refuses a mismatch with the command that
rebuilds the engine. `cached_engine` finds (or, when asked, builds) the engine for an ONNX file
in a cache folder, so a node can build once on first start and never on later ones.
"""
import datetime
import hashlib
import json
import logging
import os
import platform
import sys

from trt_infer.engine.gpu import gpu_identity
from trt_infer.errors import EngineError, EngineMismatchError, ModelNotFoundError

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".json"
SIDECAR_FORMAT = 1
REBUILD_TOOL = "ros2 run trt_infer convert build"


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(engine_path):
    return str(engine_path) + SIDECAR_SUFFIX


def normalise_shapes(input_shapes):
    """{name: [dims]} with plain ints, sorted by name, for keys and sidecars."""
    return {str(name): [int(dim) for dim in shape] for name, shape in sorted((input_shapes or {}).items())}


def key_parts(onnx_sha256, trt_version, gpu, precision, input_shapes):
    return {
        "onnx_sha256": onnx_sha256,
        "tensorrt_version": str(trt_version),
        "gpu_name": gpu.get("name"),
        "compute_capability": gpu.get("compute_capability"),
        "precision": precision,
        "input_shapes": normalise_shapes(input_shapes),
    }


def cache_key(parts):
    """sha256 over the key parts (ONNX hash, TensorRT version, GPU, precision, input shapes)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_sidecar(parts, build_options, spec_digest=None, onnx_path=None, tool_versions=None):
    return {
        "format": SIDECAR_FORMAT,
        "key": cache_key(parts),
        "key_parts": parts,
        "spec_digest": spec_digest,
        "onnx_path": None if onnx_path is None else str(onnx_path),
        "build_options": build_options,
        "built_at": datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z",
        "tool_versions": dict(tool_versions or {}, python=platform.python_version(),
                              platform=platform.platform()),
    }


def _write_atomically(path, data, mode):
    partial = "{}.partial-{}".format(path, os.getpid())
    with open(partial, mode) as handle:
        handle.write(data)
    os.replace(partial, path)


def write_engine(engine_path, serialized, sidecar):
    """Write engine bytes (any buffer, e.g. IHostMemory) then its sidecar; both atomically."""
    folder = os.path.dirname(os.path.abspath(engine_path))
    if not os.path.isdir(folder):
        os.makedirs(folder)
    _write_atomically(engine_path, memoryview(serialized), "wb")
    sidecar = dict(sidecar, engine_bytes=os.path.getsize(engine_path))
    _write_atomically(sidecar_path(engine_path), json.dumps(sidecar, indent=2, sort_keys=True) + "\n", "w")
    return sidecar


def read_sidecar(engine_path):
    """The sidecar dict, or None when there is none. A sidecar that is not JSON is an error."""
    path = sidecar_path(engine_path)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        try:
            return json.load(handle)
        except ValueError as error:
            raise EngineMismatchError("{}: the engine's sidecar is not valid JSON ({}); rebuild the engine "
                                      "with `{} <model.onnx> -o {}`".format(path, error, REBUILD_TOOL, engine_path))


def rebuild_command(engine_path, sidecar=None):
    """The exact command that rebuilds `engine_path` with the options recorded in its sidecar."""
    options = (sidecar or {}).get("build_options") or {}
    onnx = (sidecar or {}).get("onnx_path") or "<model.onnx>"
    words = [REBUILD_TOOL, onnx, "-o", str(engine_path)]
    if options.get("precision"):
        words += ["--precision", options["precision"]]
    if options.get("workspace_mib"):
        words += ["--workspace", str(options["workspace_mib"])]
    if options.get("spec_path"):
        words += ["--spec", options["spec_path"]]
    for name, shapes in sorted((options.get("profiles") or {}).items()):
        words += ["--profile", "{}:{}".format(name, "/".join("x".join(str(d) for d in shape) for shape in shapes))]
    return " ".join(words)


def _describe(trt_version, gpu):
    return "TensorRT {} on {} (compute capability {})".format(
        trt_version, gpu.get("name") or "no GPU", gpu.get("compute_capability") or "unknown")


def check_engine(engine_path, trt_version, gpu):
    """Refuse an engine built for another TensorRT or GPU; log a warning when it has no sidecar.

    Returns the sidecar (or None). A GPU field that is unknown on either side (None) is not
    compared: a host without a driver cannot tell, and the deserializer checks again.
    """
    sidecar = read_sidecar(engine_path)
    if sidecar is None:
        logger.warning("%s: no sidecar %s next to the engine, so nothing shows it was built by this TensorRT "
                       "for this GPU; if loading fails, rebuild it with `%s`", engine_path,
                       os.path.basename(sidecar_path(engine_path)), rebuild_command(engine_path))
        return None
    parts = sidecar.get("key_parts") or {}
    built = {"name": parts.get("gpu_name"), "compute_capability": parts.get("compute_capability")}
    mismatches = []
    if parts.get("tensorrt_version") != str(trt_version):
        mismatches.append("TensorRT version")
    for field, label in (("name", "GPU"), ("compute_capability", "compute capability")):
        if built[field] is not None and gpu.get(field) is not None and built[field] != gpu[field]:
            mismatches.append(label)
    if mismatches:
        raise EngineMismatchError(
            "{}: engine built with {} but this process runs {} ({} differ). Engines are not portable "
            "across TensorRT versions or GPUs; rebuild it on this device with:\n  {}".format(
                engine_path, _describe(parts.get("tensorrt_version"), built), _describe(trt_version, gpu),
                " and ".join(mismatches), rebuild_command(engine_path, sidecar)))
    return sidecar


def engine_file_name(onnx_path, key, precision):
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    return "{}.{}.{}.engine".format(stem, precision, key[:16])


def cached_engine(onnx_path, cache_dir, precision="fp16", input_shapes=None, build_if_missing=False,
                  trt_module=None, gpu=None, **build_options):
    """Path of the engine for `onnx_path` in `cache_dir`, built there first when asked.

    The file name carries the cache key, so a changed ONNX file, TensorRT, GPU, precision or input
    shape selects a different engine instead of loading a stale one (the sidecar's own key records
    the shapes the builder actually used). Without build_if_missing a
    missing engine is an error naming the command that builds it. build_options go to
    trt_infer.engine.build.build_engine (workspace_mib, spec, calibration_dir, timing_cache, profiles...).
    """
    from trt_infer.backends.tensorrt_api import import_tensorrt, trt_version

    trt = import_tensorrt(trt_module)
    gpu = gpu if gpu is not None else gpu_identity()
    spec = build_options.get("spec")
    # The file name's key: requested shapes, else the spec's input (the ONNX hash covers static shapes).
    name_shapes = input_shapes or ({spec.input.name: spec.input.shape} if spec is not None else None)
    parts = key_parts(sha256_file(onnx_path), trt_version(trt), gpu, precision, name_shapes)
    engine_path = os.path.join(cache_dir, engine_file_name(onnx_path, cache_key(parts), precision))
    if os.path.isfile(engine_path):
        check_engine(engine_path, trt_version(trt), gpu)
        return engine_path
    if not build_if_missing:
        raise ModelNotFoundError(
            "no engine for {} ({}, {}) in {}; build it with `{} {} -o {} --precision {}` or start with "
            "build_if_missing enabled".format(onnx_path, precision, _describe(trt_version(trt), gpu), cache_dir,
                                              REBUILD_TOOL, onnx_path, engine_path, precision))
    _check_writable(cache_dir, engine_path)
    from trt_infer.engine.build import build_engine

    logger.info("building %s from %s (first start on this device; later starts reuse it)", engine_path, onnx_path)
    build_engine(onnx_path, engine_path, precision=precision, trt_module=trt_module, gpu=gpu,
                 input_shapes=input_shapes, **build_options)
    return engine_path


def _check_writable(cache_dir, engine_path):
    """EngineError naming cache_dir and the fix unless a file can be created there: checked before
    the build, which takes minutes on a Nano, rather than when its result is written."""
    import tempfile

    try:
        if not os.path.isdir(cache_dir):
            os.makedirs(cache_dir)
        tempfile.TemporaryFile(dir=cache_dir).close()
    except EnvironmentError as error:
        raise EngineError("cache_dir {}: cannot write the engine there ({}); set cache_dir to a folder this "
                          "user can write (-p cache_dir:=$HOME/.cache/trt_infer), or build {} once with "
                          "`{} <model.onnx> -o {}` as a user who can".format(
                              cache_dir, error.strerror or error, os.path.basename(engine_path), REBUILD_TOOL,
                              engine_path))


def tool_versions(trt, extra=None):
    versions = {"tensorrt": str(getattr(trt, "__version__", "unknown")), "numpy": _numpy_version()}
    versions.update(extra or {})
    return versions


def _numpy_version():
    module = sys.modules.get("numpy")
    return getattr(module, "__version__", None)
