"""`sgbench run --workers N` (suite key `workers`): N local processes work on one run.

The process the user started is worker 0. It checks the suite and claims (or, with --resume,
continues) the run directory exactly as a single worker does; then it starts N-1 workers that
join that directory the way a `--resume` worker does (docs/reliability.md: each unit of work in
the study is taken once), each with the suite's torch thread count. Worker 0 builds the report.

- Progress: worker 0 shows one bar for the whole run. The other workers send their progress and
  log lines over a pipe (`Channel`); worker 0 counts their images in its bar and prints their
  trial lines with its own trial counter, tagged `[worker k]`.
- Signals: SIGINT and SIGTERM to worker 0 are forwarded to every worker, so each re-queues its
  trial (a terminal's Ctrl-C reaches them directly as well; the repeat is ignored, as any repeated
  signal is). A worker dies with worker 0 (Linux: PR_SET_PDEATHSIG, which sends it SIGTERM).
- Exit code: the most severe of the workers' (`combine`); worker 0 waits for the others first.

A worker runs `python -m sgbench.run.workers SPEC` (SPEC: JSON with the suite, the run directory
and the channel's file descriptor).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

# exit codes of `sgbench run` (sgbench.run.main) by severity: an interruption or a kill of any
# worker, then bad input, a failed trial, trials left, done
_SEVERITY = {2: 3, 1: 2, 3: 1, 0: 0}


def combine(codes: list[int]) -> int:
    """The run's exit code from its workers': a signal (130, 143, or 128 + N for a worker killed
    outright) first, then 2 (bad input), 1 (a failed trial or a crashed worker), 3 (trials left), 0."""
    def rank(code: int) -> tuple[int, int]:
        return (4, code) if code >= 128 else (_SEVERITY.get(code, 2), 0)

    return max(codes, key=rank, default=0)


def exit_code_of(returncode: int) -> int:
    """subprocess's returncode (-N: killed by signal N) as the shell shows it."""
    return 128 - returncode if returncode < 0 else returncode


class SharedProgress:
    """The parent's Progress, used from its main thread and the relay threads: every call locked;
    after `close`, lines still print (workers that finish later) and counts are dropped."""

    def __init__(self, progress):
        self._progress = progress
        self._lock = threading.RLock()
        self.closed = False

    def __getattr__(self, name):
        attr = getattr(self._progress, name)
        if not callable(attr):
            return attr

        def locked(*args, **kwargs):
            with self._lock:
                if self.closed and name not in ("write", "trial_done"):
                    return None
                return attr(*args, **kwargs)

        return locked

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._progress.close()


class LocalWorkers:
    """Worker 0's side: starts the other workers once the run directory exists, relays their
    progress and output, forwards signals, and collects their exit codes."""

    def __init__(self, count: int, suite_path, threads: int, max_trials: Optional[int], argv: list[str], log,
                 overrides=()):
        from sgbench.config.files import command_line_file  # sgbench:suites/... names a shipped suite

        self.count, self.suite_path, self.threads = count, str(command_line_file(suite_path).resolve()), threads
        self.overrides = list(overrides)  # --set: every worker loads the same suite
        self.max_trials, self.argv, self.log = max_trials, argv, log
        self.procs: list[subprocess.Popen] = []
        self.threads_: list[threading.Thread] = []
        self.signum: Optional[int] = None
        self.progress: Optional[SharedProgress] = None
        self._pending: list[tuple[int, dict]] = []  # messages before the progress bar exists
        self._lock = threading.Lock()

    # ---- hooks of run_suite -------------------------------------------------------------
    def started(self, run_dir: Path) -> None:
        """The run directory exists and its studies are open: start workers 1..N-1 on it."""
        env = dict(os.environ)
        env.pop("RANK", None), env.pop("WORLD_SIZE", None)
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        import sgbench

        root = str(Path(sgbench.__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for k in range(1, self.count):
            read_fd, write_fd = os.pipe()
            spec = {"suite": self.suite_path, "out": str(run_dir.parent.resolve()), "name": run_dir.name,
                    "max_trials": self.max_trials, "overrides": self.overrides, "fd": write_fd, "parent": os.getpid(), "worker": k,
                    "argv": [*self.argv, f"(local worker {k})"]}
            proc = subprocess.Popen([sys.executable, "-m", "sgbench.run.workers", json.dumps(spec)], env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    pass_fds=(write_fd,))
            os.close(write_fd)
            self.procs.append(proc)
            if self.signum is not None:  # a signal arrived while the workers were starting
                proc.send_signal(self.signum)
            for target, args in ((self._relay_messages, (k, os.fdopen(read_fd, "r", encoding="utf-8"))),
                                 (self._relay_output, (k, proc.stdout))):
                t = threading.Thread(target=target, args=args, name=f"sgbench-worker-{k}-relay", daemon=True)
                t.start()
                self.threads_.append(t)
        pids = ", ".join(str(p.pid) for p in self.procs)
        self.log(f"started {self.count - 1} local worker(s) on {run_dir} (pid {pids}), "
                 f"{self.threads or 'default'} torch thread(s) each")

    def make_progress(self, total_images: int, total_trials: int, enabled: bool):
        from sgbench.run.progress import Progress

        with self._lock:
            self.progress = SharedProgress(Progress(total_images, total_trials, enabled))
            pending, self._pending = self._pending, []
        for k, msg in pending:
            self._apply(k, msg)
        return self.progress

    def signalled(self, signum: int) -> None:
        """Forward the first SIGINT/SIGTERM to every worker (called from the signal handler)."""
        if self.signum is None:
            self.signum = signum
            for p in self.procs:
                if p.poll() is None:
                    try:
                        p.send_signal(signum)
                    except ProcessLookupError:
                        pass

    def wait(self, stop: bool = False) -> list[int]:
        """Wait for every worker (after SIGTERM to them if `stop`); their exit codes."""
        if stop:
            self.signalled(signal.SIGTERM)
        codes = [exit_code_of(p.wait()) for p in self.procs]
        for t in self.threads_:
            t.join(timeout=5)
        if self.progress is not None:
            self.progress.close()
        return codes

    # ---- relaying ---------------------------------------------------------------------------
    def _relay_messages(self, k: int, pipe) -> None:
        with pipe:
            for line in pipe:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    if self.progress is None:
                        self._pending.append((k, msg))
                        continue
                self._apply(k, msg)

    def _relay_output(self, k: int, stream) -> None:
        with stream:
            for raw in stream:
                self._print(f"[worker {k}] {raw.decode('utf-8', 'replace').rstrip()}")

    def _apply(self, k: int, msg: dict) -> None:
        kind, p = msg.get("kind"), self.progress
        if kind == "update":
            p.update(int(msg["n"]))
        elif kind == "shrink":
            p.shrink(int(msg["n"]))
        elif kind == "trial":
            p.trial_done(f"[worker {k}] {msg['text']}")
        elif kind == "log":
            p.write(f"[worker {k}] {msg['text']}")

    def _print(self, text: str) -> None:
        with self._lock:
            p = self.progress
        if p is not None:
            p.write(text)
        else:
            print(text, file=sys.stderr, flush=True)


# ---- a worker ------------------------------------------------------------------------------------

class Channel:
    """A worker's side of the pipe to worker 0: JSON lines of progress and log messages."""

    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def send(self, **msg) -> None:
        try:
            with self._lock:
                self._file.write(json.dumps(msg) + "\n")
        except (OSError, ValueError):  # worker 0 is gone: nothing to show the progress to
            pass

    def log(self, text: str) -> None:
        self.send(kind="log", text=text)

    def progress(self, total_images: int, total_trials: int, enabled: bool) -> "RemoteProgress":
        return RemoteProgress(self)


class RemoteProgress:
    """The Runner's Progress in a worker: images and trial lines go to worker 0's bar."""

    def __init__(self, channel: Channel):
        self.channel = channel

    def update(self, n: int) -> None:
        self.channel.send(kind="update", n=int(n))

    def shrink(self, n: int) -> None:
        self.channel.send(kind="shrink", n=int(n))

    def grow(self, images: int, trials: int = 0) -> None:
        pass  # worker 0's plan covers the whole run

    def trial_done(self, text: str) -> None:
        self.channel.send(kind="trial", text=text)

    def write(self, text: str) -> None:
        pass  # the run's summary lines: worker 0 prints them once

    def close(self) -> None:
        pass


def _die_with_parent(parent: int) -> None:
    """Linux: get SIGTERM when worker 0 exits (so a worker never outlives a killed parent)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(143)


def worker_main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    _die_with_parent(int(spec["parent"]))
    channel = Channel(int(spec["fd"]))
    from sgbench.errors import UserError
    from sgbench.run.main import run_suite
    from sgbench.run.signals import RunInterrupted

    try:
        result = run_suite(spec["suite"], out=spec["out"], resume=True, name=spec["name"],
                           max_trials=spec["max_trials"], report=False, argv=spec["argv"], log=channel.log,
                           retry_failed=False, workers=1, progress_factory=channel.progress,
                           overrides=spec.get("overrides", []))
        code = result.exit_code
    except RunInterrupted as e:
        code = e.exit_code
    except UserError as e:
        print(f"sgbench run: error: {e}", file=sys.stderr, flush=True)
        code = e.exit_code
    except KeyboardInterrupt:
        code = 130
    except Exception:  # a bug: its traceback (credentials masked) goes to worker 0's output
        import traceback

        from sgbench.secrets import redact

        print(redact(traceback.format_exc()), file=sys.stderr, end="", flush=True)
        code = 1
    for s in (signal.SIGINT, signal.SIGTERM):  # the work is recorded: keep the exit code
        signal.signal(s, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1]))
