"""How many threads a job takes by default: the cores this process may run on."""
import os


def cores() -> int:
    """The cores this process may run on (its affinity where the OS says, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers(most: int = 2) -> int:
    """Threads for independent pieces of work (scan blocks, features, ablation streams) by
    default: `most`, or fewer where the process may run on fewer cores."""
    return min(most, cores())
