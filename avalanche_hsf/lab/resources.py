"""Peak resident memory of this process, resettable between runs on Linux."""

import re
import resource
import sys


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) so the next reading covers one run only."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """VmHWM where available; otherwise getrusage's lifetime peak."""
    try:
        with open("/proc/self/status") as handle:
            match = re.search(r"VmHWM:\s+(\d+) kB", handle.read())
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)
