"""What the benchmark scripts print about the machine a run was made on."""

import os
import platform


def cpu_description():
    """The CPU model and how many logical CPUs: 'Intel(R) Xeon(R) ... x 2'."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = f"{names[0]} x {len(names)}"
    except OSError:
        pass
    return cpu


def load1():
    """The 1-minute load average."""
    return os.getloadavg()[0]
