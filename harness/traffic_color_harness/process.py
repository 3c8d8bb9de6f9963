"""Child processes the harness owns: each in its own process group, logging to a file, stopped
by killing that group, waited on with a deadline.

A process started in the background by a shell may outlive (or be killed with) whatever
started it; owning the group is what lets the demo, the tests, the benchmark and the soak
leave nothing behind, and a log file per process is what a failure report shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


class HarnessError(Exception):
    """A process the harness started did not come up (it exited, or a wait timed out)."""


class Process:
    """A child process in its own process group, output to a log file."""

    def __init__(self, name: str, argv: list, log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL it if still there after `timeout`."""
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            if self.wait(timeout) is None:
                self._signal_group(signal.SIGKILL)
                self.wait(timeout)
        else:
            # The leader exited; make sure nothing it started lingers.
            self._signal_group(signal.SIGKILL)
        if not self._log.closed:
            self._log.close()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # our own group: start_new_session=True
        except ProcessLookupError:
            pass

    def log(self, tail_bytes: int | None = None) -> str:
        try:
            self._log.flush()
        except ValueError:
            pass
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        if tail_bytes is not None and len(data) > tail_bytes:
            data = b"...\n" + data[-tail_bytes:]
        return data.decode("utf-8", "replace")

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process (all threads), in seconds (/proc/PID/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int | None:
        """Resident memory (VmRSS of /proc/PID/status) in KiB; None once the process is gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None


def poll(timeout: float, what: str, proc: Process, step: float = 0.05) -> Iterator[None]:
    """Yields every `step` seconds until the caller stops iterating; raises HarnessError, with
    the tail of the process's log, once `proc` has exited or `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        yield
        if not proc.alive():
            raise HarnessError(f"{what}: {proc.name} exited with code {proc.popen.returncode}\n"
                               f"--- {proc.name} log ---\n{proc.log(8000)}")
        if time.monotonic() > deadline:
            raise HarnessError(f"{what}: timed out after {timeout:.0f}s\n"
                               f"--- {proc.name} log ---\n{proc.log(8000)}")
        time.sleep(step)
