"""What every benchmark records next to its figures: the machine they were measured on."""
import os
import platform


def cpu_name():
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        if names:
            return names[0]
    except (IOError, OSError):
        pass
    return platform.processor() or platform.machine()


def machine(**extra):
    """CPU model, core count, Python and numpy versions and the platform, plus the caller's own keys
    (library versions, the GPU)."""
    import numpy as np

    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform()}
    info.update(extra)
    return info
