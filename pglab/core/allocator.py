"""The C allocator of a training process: memory an update frees is kept for the next update.

Every update allocates and frees the same large tensors (a batch's activations and their gradients).
glibc's malloc hands blocks above its mmap threshold out as fresh mappings and gives the top of its heap
back to the system once more than its trim threshold is free, so each update faulted its tensors' pages
in again: on MinAtar (16 x 16-step batches, reinforce-value) 900-2,100 minor page faults per 1,024
steps, about 5% of the run's CPU time. With both thresholds raised, the memory an update frees stays in
the process for the next one (the process holds its peak, which every update reaches anyway) and the
faults are gone. Nothing computed changes: this is where memory comes from, not what is done with it.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (glibc's malloc.h)
MMAP_THRESHOLD = 64 << 20  # bytes: smaller blocks come from the heap (a MinAtar batch's largest is 4 MiB)
TRIM_THRESHOLD = 256 << 20  # bytes free at the heap's top before glibc gives any back


@cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); False where the C library is not
    glibc (macOS, musl, Windows), which keep their own allocators' habits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the symbols of the running process, its C library's among them
        if not hasattr(libc, "gnu_get_libc_version"):
            return False
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
