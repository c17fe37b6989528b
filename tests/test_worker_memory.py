"""Prepare workers keep their freed memory (curate.worker_memory) where the C library is glibc."""
import platform
import subprocess
import sys


def test_allocator_is_tuned_in_a_worker_process_under_glibc():
    code = "from curate.worker_memory import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ("True" if platform.libc_ver()[0] == "glibc" else out)
    assert out in ("True", "False")
