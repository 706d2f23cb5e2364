"""How much memory a scan needs and how much the machine has: a smaller layout, the streaming
scan (scan/stream.py, float16 recordings), or a clear error, instead of the kernel's
out-of-memory killer.

The scan keeps whole columns: each worker thread holds a block of units as several float64
(N, block) arrays (activations, ranks over all positions and within each character, the
null's transforms), every feature a few (N,) arrays, and the scan a few more (ranks.Groups).
benchmarks/bench_big.py measured 1.7 KB per character for two workers x 24 units and one
feature, i.e. about 4.4 float64 cells per character and unit (when beyond_char ranked
residuals; ranking within characters measured the same peak, 2.19 GB for 1M characters x 48
units x 17 features).
"""
import os

from interpret._util.cores import workers as default_workers

CELL_BYTES = 8 * 4.5     # per character per unit of a block, with some margin over the 4.4 measured
FEATURE_BYTES = 56       # per character per feature: values, standardised values, ranks, ranks
                         # within the character (beyond_char), a doubled float32 copy
CHAR_BYTES = 24          # per character: ranks.Groups (rank offsets, 1 / n_c, codes)
BASE_BYTES = 200 * 2**20  # numpy, the text and its indices, the rows


def available():
    """Bytes the kernel says can be allocated without swapping (Linux MemAvailable); None elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def scan_bytes(n_chars, block, workers, n_features):
    """Estimated peak bytes of a scan of n_chars characters."""
    return BASE_BYTES + n_chars * (CHAR_BYTES + workers * block * CELL_BYTES +
                                   n_features * FEATURE_BYTES)


BLOCK_BYTES = 64 << 20     # a block's float64 (N, block) array: memory the allocator reuses
MAX_BLOCK = 16


def default_block(n_chars):
    """Units a block by default: its (N, block) float64 arrays near BLOCK_BYTES (1-16 units; 8 at
    1M characters). Bigger blocks touch more fresh memory than they save: on 1M x 512, blocks of
    24 took 17.6-22.7 s against 16.4-17.4 s for 8 (alternated, benchmarks/README.md), 16 no
    steady gain."""
    return max(1, min(MAX_BLOCK, BLOCK_BYTES // (8 * max(1, n_chars))))


def scan_layout(n_chars, n_units, n_features, block_units=None, workers=None, free=None):
    """(block_units, workers) for the scan: the given ones (by default default_block and up to 2
    workers) if they fit in memory, else smaller ones; ValueError naming the sizes if even one
    unit at a time does not fit."""
    free = available() if free is None else free
    workers = workers or default_workers()  # scan()'s default
    block = max(1, min(block_units or default_block(n_chars), n_units))
    if free is None:
        return block, workers
    layouts = sorted({(b, w) for b in (block, min(block, 8), 1) for w in range(workers, 0, -1)},
                     key=lambda bw: -bw[0] * bw[1])
    for b, w in layouts:
        if scan_bytes(n_chars, b, w, n_features) <= free:
            return b, w
    need = scan_bytes(n_chars, 1, 1, n_features)
    raise ValueError(f"scanning {n_chars:,} characters against {n_features} feature(s) needs about "
                     f"{need / 2**30:.1f} GB of memory and {free / 2**30:.1f} GB is available; scan fewer "
                     "features (-f) or a recording of part of the text")


def direct_reads(nbytes: int, mapped: bool, free=None) -> bool:
    """Whether the in-memory scan's workers take each block's units straight from the recording
    (nbytes, mapped: a memmap) rather than through its buffered reads: always for an array in
    memory; for a memmap whose file the page cache holds twice over in the available memory.
    A block's units touch every page of a row-major file, so direct reads keep the file's cached
    pages mapped (counted in the process's RSS, not taken from the machine) and map them once;
    the buffered reads map them again on each read of many units and copy them into two buffers
    (fresh memory: on 1M x 512 units, 512 MiB and eight mappings of 2 GB, 2-3 s more wall,
    benchmarks/README.md). A file bigger than that would be read from disk once a block."""
    if not mapped:
        return True
    free = available() if free is None else free
    return free is not None and nbytes <= free / 2


STREAM_ENV = "INTERPRET_SCAN"  # "stream" or "memory" forces the scan's path (tests, benchmarks)


def scan_plan(n_chars, n_units, n_features, dtype, free=None):
    """("memory", block_units, workers) if the in-memory scan fits, else ("stream", None, None)
    for float16 activations (scan/stream.py: memory bounded whatever n_chars); ValueError if
    neither can run. A float16 recording is scanned in memory only with the full layout in half
    the available memory (a shrunken layout is slower than streaming and would take the rest);
    a float32 one shrinks its layout to fit. INTERPRET_SCAN=stream|memory forces a path."""
    force = os.environ.get(STREAM_ENV, "")
    if force not in ("", "stream", "memory"):
        raise ValueError(f"{STREAM_ENV}={force!r}; use 'stream', 'memory' or leave it unset")
    float16 = str(dtype) == "float16"
    if force == "stream":
        if not float16:
            raise ValueError(f"{STREAM_ENV}=stream needs float16 activations, these are {dtype}; "
                             "record with --dtype float16")
        return "stream", None, None
    if float16 and force != "memory":  # whole columns only with the full layout in half the memory
        free = available() if free is None else free
        block, workers = min(default_block(n_chars), max(1, n_units)), default_workers()
        if free is None or scan_bytes(n_chars, block, workers, n_features) <= free / 2:
            return "memory", block, workers
        return "stream", None, None
    try:
        return ("memory", *scan_layout(n_chars, n_units, n_features, free=free))
    except ValueError as err:
        raise ValueError(f"{err}, or record with --dtype float16 (scanned in streaming passes, "
                         "in bounded memory)") from None
