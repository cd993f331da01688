"""This process's memory as Linux reports it, for the Python peers of the benchmarks
(baselines_sklearn.py, data_pipeline.py), which import it from beside them."""


def status_mib(field):
    """Field `field` of /proc/self/status (VmRSS, VmHWM, ...) in MiB; NaN where there is none."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")
