# One CPython sandbox worker: src/node/cpython.ts starts `python3 -I -B -X utf8 -c <this text>` (inside
# `unshare` where the OS allows it) with fd 0 on /dev/null, fds 1 and 2 on files the pool reads after
# each call (and when it has to give a call up), and fd 3 a socket to the pool, one JSON object a line:
#   pool -> here: {"op": "init", "guard": <guard.py>, "config": {...}} once, then
#                 {"op": "run", "code", "session", "cpuSeconds"} or {"op": "end", "session"}
#   here -> pool: {"op": "ready", ...} or {"op": "failed", "error"}, then {"op": "result", ...} or {"op": "ended", "found"}
# init sets the resource limits, imports the packages and seals the interpreter with guard.py, the same
# guard as Pyodide's, in its host mode (reads limited to the Python installation, no directory
# descriptors, only the CPU time limit may change). Model code runs in the guard's execute(), called
# from _loop(), whose frame holds only the call's own objects. The state (sessions, the socket, the
# output files) lives in the _service() generator, whose frame the guard keeps out of reach; when
# anything but _loop() resumes it, the process ends.
import io
import json
import os
import resource
import sys
import time

PROTOCOL_FD = 3
EXIT = os._exit  # the guard replaces os._exit with a SystemExit for model code

SYMPY_WARMUP = """
from sympy import symbols, solve, factor, integrate, simplify, sin, Rational, Matrix, limit, series, oo, nsimplify, factorint
_x = symbols('x')
solve(_x**2 - 4, _x); factor(_x**2 - 1); integrate(_x * sin(_x), _x); simplify((_x**2 - 1) / (_x - 1))
Matrix([[1, 2], [3, 4]]).det(); limit(sin(_x) / _x, _x, 0); series(sin(_x), _x, 0, 4); factorint(2**32 + 1)
nsimplify(0.5); str(Rational(3, 4))
"""


class _Capped(io.RawIOBase):
    """fd 1 or 2 for one call: keeps at most `cap` bytes and notes that more were written."""

    def __init__(self, fd, cap):
        super().__init__()
        self._fd, self.cap, self.kept, self.dropped = fd, cap, 0, False

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def isatty(self):
        return False

    def write(self, data):
        view = memoryview(data).cast("B")
        room = max(self.cap - self.kept, 0)
        if len(view) > room:
            self.dropped = True
        piece = view[:room]
        while len(piece):
            written = os.write(self._fd, piece)
            self.kept += written
            piece = piece[written:]
        return len(view)


class _Lines:
    """JSON objects, one a line, on the pool's socket."""

    def __init__(self, fd):
        self.fd, self.buffer = fd, bytearray()

    def read(self):
        while True:
            at = self.buffer.find(b"\n")
            if at >= 0:
                line = bytes(self.buffer[:at])
                del self.buffer[: at + 1]
                return json.loads(line)
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                EXIT(0)  # the pool has gone
            self.buffer += chunk

    def send(self, message):
        data = memoryview((json.dumps(message) + "\n").encode())
        while len(data):
            data = data[os.write(self.fd, data):]


def _read_proc(fd):
    return os.pread(fd, 1 << 16, 0).decode()


def _status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split()[1:]
    return []


def _cpu_used():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _set_limit(which, soft, hard):
    """Lowers a limit (a limit already lower stays)."""
    old_soft, old_hard = resource.getrlimit(which)
    if old_hard != resource.RLIM_INFINITY:
        hard = min(hard, old_hard)
    resource.setrlimit(which, (min(soft, hard), hard))
    return resource.getrlimit(which)


def _outer_uid():
    """This process's user as the host sees it (through a user namespace's mapping, if any)."""
    uid = os.getuid()
    with open("/proc/self/uid_map") as f:
        for line in f:
            inside, outside, count = (int(x) for x in line.split())
            if inside <= uid < inside + count:
                return outside + uid - inside, line.split() != ["0", "0", "4294967295"]
    return uid, False


def _user_tasks(uid):
    """Threads of every process of `uid` (RLIMIT_NPROC counts them all)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                text = f.read()
        except OSError:
            continue
        uids = _status_field(text, "Uid")
        if uids and int(uids[0]) == uid:
            total += int((_status_field(text, "Threads") or ["1"])[0])
    return total


def _limit_processes(margin):
    """RLIMIT_NPROC where it binds: never for root, per namespace inside a user namespace of its own."""
    outer, own_namespace = _outer_uid()
    if outer == 0:
        return "processes: not limited by the OS: the interpreter runs as root, which RLIMIT_NPROC does not bind; the Python guard refuses fork, exec and subprocess"
    with open("/proc/self/status") as f:
        threads = int((_status_field(f.read(), "Threads") or ["1"])[0])
    now = threads if own_namespace else _user_tasks(os.getuid())
    soft, _ = _set_limit(resource.RLIMIT_NPROC, now + margin, now + margin)
    where = "in its own user namespace" if own_namespace else f"for all processes of uid {outer}"
    return f"processes: RLIMIT_NPROC {soft} threads and processes {where} ({now} at start); the Python guard also refuses fork, exec and subprocess"


def _refuse_processes(*args, **kwargs):
    raise PermissionError("starting processes is not allowed in the sandbox")


def _package_status(name, preloaded, failures):
    import importlib.metadata
    import importlib.util
    if name in failures:
        return {"name": name, "available": False, "reason": failures[name]}
    module = sys.modules.get(name) if name in preloaded else None
    version = getattr(module, "__version__", None)
    if module is None:
        try:
            if importlib.util.find_spec(name) is None:
                return {"name": name, "available": False, "reason": f"not installed for {sys.executable}"}
        except Exception as e:
            return {"name": name, "available": False, "reason": f"{type(e).__name__}: {e}"}
    if not isinstance(version, str):
        try:
            version = importlib.metadata.version(name)
        except Exception:
            version = None
    status = {"name": name, "available": True, "source": "system"}
    if version:
        status["version"] = version
    return status


def _start(init, lines):
    config = init["config"]
    scratch = config["scratchRoot"]
    os.chdir(scratch)
    isolation = []

    # --- Limits the OS enforces ----------------------------------------------------------------
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    memory = int(config["memoryMb"] * 2**20)
    _set_limit(resource.RLIMIT_AS, memory, memory)
    isolation.append(f"memory: RLIMIT_AS {config['memoryMb']} MiB of address space per worker process (MemoryError past it)")
    file_size = int(config["fileSizeMb"] * 2**20)
    _set_limit(resource.RLIMIT_FSIZE, file_size, file_size)
    isolation.append(f"file size: RLIMIT_FSIZE {config['fileSizeMb']} MiB per file written (OSError past it); no limit on the number of files")
    files, _ = _set_limit(resource.RLIMIT_NOFILE, 256, 256)
    isolation.append(f"open files: RLIMIT_NOFILE {files}")
    cpu_at_start = _cpu_used()
    lifetime = int(cpu_at_start) + int(config["cpuLifetimeSeconds"])
    _set_limit(resource.RLIMIT_CPU, lifetime, lifetime)
    isolation.append(f"CPU time: RLIMIT_CPU per call (its timeout and grace plus 1 s, then SIGXCPU), {config['cpuLifetimeSeconds']} s in a worker's life (then SIGKILL; a worker past half of it is replaced)")
    isolation.append(_limit_processes(int(config["maxProcesses"])))
    import socket
    interfaces = [name for _, name in socket.if_nameindex()]

    # --- Output: fds 1 and 2, capped per call ------------------------------------------------------
    raws = {}

    def open_stream(fd):
        raws[fd] = _Capped(fd, int(config["outputBytes"]))
        return io.TextIOWrapper(io.BufferedWriter(raws[fd]), encoding="utf-8", errors="backslashreplace")

    sys.stdout, sys.stderr = open_stream(1), open_stream(2)

    # --- Packages ----------------------------------------------------------------------------------
    import importlib.util
    preload_started = time.perf_counter()
    import_ms, preloaded, failures = {}, set(), {}
    for name in config["preload"]:
        if importlib.util.find_spec(name) is None:
            continue
        started = time.perf_counter()
        try:
            __import__(name)
            preloaded.add(name)
        except BaseException as e:
            failures[name] = f"importing it failed: {type(e).__name__}: {e}"
        import_ms[name] = (time.perf_counter() - started) * 1000
    if "sympy" in preloaded:
        exec(SYMPY_WARMUP, {"__builtins__": __builtins__})
    preload_ms = (time.perf_counter() - preload_started) * 1000
    wanted = list(dict.fromkeys(config["packages"] + config["preload"]))
    packages = [_package_status(name, preloaded, failures) for name in wanted]

    # --- Seal --------------------------------------------------------------------------------------
    import _posixsubprocess
    import subprocess
    import threading  # noqa: F401 (imported now, so that its state is in the guard's snapshot)
    _posixsubprocess.fork_exec = _refuse_processes  # it starts processes with no audit event
    if hasattr(subprocess, "_fork_exec"):
        subprocess._fork_exec = _refuse_processes
    import sysconfig
    paths = [p for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)]
    paths += [v for k, v in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib") and os.path.exists(v)]
    paths = [os.path.normpath(p) for p in dict.fromkeys(paths)]
    seal_config = {
        "scratchRoot": scratch,
        "scratchMode": 0o700,
        "recursionLimit": config["recursionLimit"],
        "blockedImports": config["blockedImports"],
        "bridgeRoots": [],
        "trustedPrefixes": [p + "/" for p in paths],
        "readablePrefixes": paths + ["/usr/share/zoneinfo"],
        "cpuRlimit": resource.RLIMIT_CPU,
        "guardedModules": config["guardedModules"],
        "stdlibPreload": config["stdlibPreload"],
        "refusedExtra": config["refusedExtra"],
        "maxSessions": config["maxSessions"],
        "checkIsolation": False,
        "available": [p["name"] for p in packages if p["available"]],
    }
    statm = os.open("/proc/self/statm", os.O_RDONLY)
    status = os.open("/proc/self/status", os.O_RDONLY)
    threads = int((_status_field(_read_proc(status), "Threads") or ["1"])[0])
    recycle_at = cpu_at_start + config["cpuLifetimeSeconds"] / 2
    service = _service(lines, raws, statm, status, threads, recycle_at, int(config["outputBytes"]), sys._getframe, _loop.__code__)
    guard = {"__builtins__": __builtins__, "__name__": "guard"}
    exec(compile(init["guard"], "guard.py", "exec"), guard)
    prepare, execute, finish, end_session, _ = guard["seal"](json.dumps(seal_config), (service,), open_stream)
    next(service)
    service.send((prepare, finish, end_session))
    lines.send({
        "op": "ready",
        "pythonVersion": sys.version.split()[0],
        "executable": sys.executable,
        "packages": packages,
        "importMs": import_ms,
        "preloadMs": preload_ms,
        "isolation": isolation,
        "interfaces": interfaces,
    })
    return service.send, execute


def _service(lines, raws, statm, status, base_threads, recycle_at, output_cap, getframe, loop_code):
    """The worker's state and its conversation with the pool; see the top of the file."""
    prepare, finish, end_session = yield
    page = os.sysconf("SC_PAGE_SIZE")
    set_limit, getrlimit, cpu_limit = resource.setrlimit, resource.getrlimit, resource.RLIMIT_CPU
    loads = json.loads
    session, first = None, True

    def complete(outcome):
        outcome = loads(outcome)
        outcome["traceback"] = outcome["traceback"][-output_cap:]
        broken = finish(session)
        dead, note = broken, None
        if broken is not None:  # as Pyodide's runtime reports it
            outcome = {"status": "killed", "errorType": None, "traceback": f"the Python runtime crashed: {broken}", "errorLine": None}
        else:
            threads = int((_status_field(_read_proc(status), "Threads") or ["1"])[0])
            if threads > base_threads:
                dead = note = f"the code left {threads - base_threads} thread(s) running, so its worker was replaced"
        if dead is None and _cpu_used() > recycle_at:
            dead = "it has used half of a worker's CPU time"
        lines.send({
            "op": "result",
            "outcome": outcome,
            "dropped": [raws[1].dropped, raws[2].dropped],
            "heapMb": int(_read_proc(statm).split()[0]) * page / 2**20,
            "dead": dead,
            "note": note,
        })

    outcome = yield None
    while True:
        try:
            if getframe(1).f_code is not loop_code or (outcome is None) != first:
                EXIT(70)  # driven by model code: nothing it says can be trusted any more
            if not first:
                complete(outcome)
            first = False
            while True:
                request = lines.read()
                if request["op"] == "end":
                    lines.send({"op": "ended", "found": bool(end_session(request["session"]))})
                    continue
                code, session = request["code"], request["session"]
                for fd in (1, 2):
                    os.ftruncate(fd, 0)
                    raws[fd].kept, raws[fd].dropped = 0, False
                hard = getrlimit(cpu_limit)[1]
                set_limit(cpu_limit, (min(int(_cpu_used() + request["cpuSeconds"]) + 1, hard), hard))
                compiled, namespace, failure = prepare(code, session)
                if failure is None:
                    break
                complete(failure)
            call = (code, compiled, namespace, session is None)
            code = compiled = namespace = None
        except BaseException as e:
            try:
                lines.send({"op": "result", "dead": f"the worker failed: {type(e).__name__}: {e}"[:500]})
            finally:
                EXIT(71)
        outcome = yield call
        call = None


def _loop(step, execute):
    call = step(None)
    while True:
        call = step(execute(*call))


def _boot():
    lines = _Lines(PROTOCOL_FD)
    init = lines.read()
    try:
        return _start(init, lines)
    except BaseException as e:
        lines.send({"op": "failed", "error": f"{type(e).__name__}: {e}"})
        EXIT(1)


_loop(*_boot())
