/**
 * The Python side of the sandbox, run once in each warm interpreter (see runtime.ts). seal(config)
 * cuts Python off from JavaScript, installs an audit hook (PEP 578) that refuses processes, network,
 * native code, frame and heap introspection and writes outside the scratch directory, and returns
 * run(code, session), end_session(session) and check_isolation().
 */
export const GUARD_PY = String.raw`
# The sandbox inside a warm Pyodide: seal(config) runs once, after the packages are loaded. It cuts
# Python off from JavaScript (Pyodide's bridge modules are dropped and scrubbed, imports of them are
# refused), installs an audit hook that refuses processes, network, native code, frame and heap
# introspection and writes outside the scratch directory, and returns run / end_session.
# Nothing model code can reach holds a reference to the hook's state: run and the hook live in the
# closure of seal, which only JavaScript holds, and frames (the way up to it) are refused.
import builtins
import gc
import json
import linecache
import os
import posix
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
import types
import warnings
import _imp


def seal(config_json):
    config = json.loads(config_json)
    scratch_root = config["scratchRoot"]
    recursion_limit = int(config["recursionLimit"])
    code_filename = "<code>"
    blocked_imports = frozenset(config["blockedImports"])
    bridge_roots = frozenset(config["bridgeRoots"])
    trusted_prefixes = tuple(config["trustedPrefixes"])
    writable_devices = frozenset(("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"))
    frame_attributes = frozenset(("tb_frame", "gi_frame", "cr_frame", "ag_frame"))
    socket_like = ("socket.", "ctypes.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.", "http.client.")
    refused_events = {
        "os.system": "running shell commands",
        "os.exec": "starting processes",
        "os.posix_spawn": "starting processes",
        "os.spawn": "starting processes",
        "os.fork": "starting processes",
        "os.forkpty": "starting processes",
        "os.kill": "sending signals",
        "os.killpg": "sending signals",
        "subprocess.Popen": "starting processes",
        "pty.spawn": "starting processes",
        "urllib.Request": "network access",
        "webbrowser.open": "network access",
        "gc.get_objects": "heap introspection (gc.get_objects)",
        "gc.get_referrers": "heap introspection (gc.get_referrers)",
        "gc.get_referents": "heap introspection (gc.get_referents)",
        "sys._getframe": "frame introspection (sys._getframe)",
        "sys._current_frames": "frame introspection",
        "sys._current_exceptions": "frame introspection",
        "sys.settrace": "tracing (sys.settrace)",
        "sys.setprofile": "profiling hooks (sys.setprofile)",
        "sys.monitoring.register_callback": "monitoring callbacks",
        "sys.remote_exec": "remote execution",
        "sys.addaudithook": "audit hooks",
        "code.__new__": "building code objects by hand",
    }
    write_events = {
        # event -> positions of path arguments that must stay inside the scratch directory
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.symlink": (0, 1),
        "os.link": (0, 1), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
        "os.chflags": (0,), "os.lchflags": (0,), "os.lchmod": (0,), "os.lchown": (0,), "os.setxattr": (0,),
        "os.removexattr": (0,), "shutil.rmtree": (0,), "tempfile.mkstemp": (0,), "tempfile.mkdtemp": (0,),
    }
    dir_fd_position = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 2, "os.symlink": 2, "os.chmod": 2, "os.chown": 3, "os.utime": 3, "shutil.rmtree": 1}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    plain_path_types = (str, bytes)
    path_types = []
    try:
        import pathlib
        path_types = [pathlib.PosixPath, pathlib.PurePosixPath]
    except ImportError:
        pass
    path_types = tuple(path_types)

    armed = False
    scratch = scratch_root
    pyc_token = False

    def refuse(what):
        return PermissionError(f"{what} is not allowed in the sandbox")

    def inside_scratch(path):
        if isinstance(path, int):
            return True
        if isinstance(path, plain_path_types):
            text = os.fsdecode(path)
        elif type(path) in path_types:
            text = str(path)
        else:
            return False  # a custom os.PathLike could answer differently on each call
        full = os.path.normpath(os.path.join(os.getcwd(), text))
        return full == scratch or full.startswith(scratch + "/") or full in writable_devices

    def hook(event, args):
        nonlocal pyc_token
        if not armed:
            return
        if event == "import":
            name = args[0]
            if isinstance(name, str) and name.partition(".")[0] in blocked_imports:
                raise ModuleNotFoundError(import_message(name), name=name)
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(mode, str):
                writes = any(c in mode for c in "wax+")
            else:
                writes = bool(flags & write_flags)
            if writes and not inside_scratch(path):
                raise PermissionError(f"writing to {path!r} is not allowed: the sandbox can only write inside its scratch directory {scratch}")
            if isinstance(path, str) and path.endswith(".pyc"):
                # Compiled files are trusted only from the read-only library tree; elsewhere the refusal
                # makes importlib fall back to the source. One trusted file allows one marshal.loads.
                if not path.startswith(trusted_prefixes) or ".." in path:
                    raise PermissionError("reading compiled bytecode outside the library is not allowed in the sandbox")
                pyc_token = True
            return
        if event == "marshal.loads" or event == "marshal.load":
            if not pyc_token:
                raise refuse("loading marshalled code")
            pyc_token = False
            return
        if event == "object.__getattr__":
            if args[1] in frame_attributes:
                raise refuse(f"frame introspection ({args[1]})")
            return
        what = refused_events.get(event)
        if what is not None:
            raise refuse(what)
        positions = write_events.get(event)
        if positions is not None:
            fd_at = dir_fd_position.get(event)
            if fd_at is not None and len(args) > fd_at and args[fd_at] is not None:
                raise refuse("file operations relative to a directory descriptor")
            for i in positions:
                if i < len(args) and not inside_scratch(args[i]):
                    raise PermissionError(f"{event} on {args[i]!r} is not allowed: the sandbox can only change files inside its scratch directory {scratch}")
            return
        if event.startswith(socket_like):
            raise refuse("network access and native code (" + event + ")")

    def import_message(name):
        root = name.partition(".")[0]
        if root in ("micropip",):
            return f"installing packages is not allowed in the sandbox (import of {name!r} refused); available: {', '.join(config['available'])}"
        if root in bridge_roots:
            return f"import of {name!r} is not allowed: sandboxed code cannot reach JavaScript"
        return f"import of {name!r} is not allowed in the sandbox"

    # --- Cut the bridge to JavaScript -------------------------------------------------------------
    core = sys.modules.get("_pyodide_core")
    js_proxy_type = None
    try:
        from pyodide.ffi import JsProxy as js_proxy_type
    except ImportError:
        pass

    def is_bridge(value):
        if value is core and core is not None:
            return True
        if js_proxy_type is not None and isinstance(value, js_proxy_type):
            return True
        return type(value) is types.BuiltinFunctionType and core is not None and getattr(value, "__self__", None) is core

    def severed(*args, **kwargs):
        raise PermissionError("the JavaScript bridge is not available in the sandbox")

    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__.partition(".")[0] not in bridge_roots]
    for name in [n for n in sys.modules if n.partition(".")[0] in bridge_roots]:
        module = sys.modules.pop(name)
        namespace = getattr(module, "__dict__", None) if isinstance(module, types.ModuleType) else None
        if namespace is not None:
            for key, value in list(namespace.items()):
                if is_bridge(value):
                    namespace[key] = severed
    for name, module in list(sys.modules.items()):
        if isinstance(module, types.ModuleType):
            for key, value in list(module.__dict__.items()):
                if is_bridge(value):
                    module.__dict__[key] = severed

    # Builtin and extension modules can be created again without an import statement; only trusted
    # ones are, and extension modules only from the read-only library tree.
    def guarded(original, allow):
        def gate():
            result = None
            while True:
                spec = yield result
                if allow(spec):
                    try:
                        result = (True, original(spec))
                    except BaseException as e:
                        result = (False, e)
                else:
                    result = (False, ModuleNotFoundError(f"creating module {getattr(spec, 'name', '?')!r} is not allowed in the sandbox"))
        sender = gate()
        next(sender)
        send = sender.send

        def create(spec, *rest):
            ok, value = send(spec)
            if ok:
                return value
            raise value
        return create

    def allow_builtin(spec):
        name = getattr(spec, "name", None)
        return isinstance(name, str) and name.partition(".")[0] not in blocked_imports and name not in ("_imp", "sys", "builtins")

    def allow_dynamic(spec):
        origin = getattr(spec, "origin", None)
        return allow_builtin(spec) and isinstance(origin, str) and origin.startswith(trusted_prefixes) and ".." not in origin

    _imp.create_builtin = guarded(_imp.create_builtin, allow_builtin)
    _imp.create_dynamic = guarded(_imp.create_dynamic, allow_dynamic)

    # --- Make the runtime survive what model code may do -----------------------------------------
    def exit_instead(code=0):
        raise SystemExit(code)

    def abort_instead():
        raise SystemExit(134)

    for module in (os, posix):
        module._exit = exit_instead
        module.abort = abort_instead

    real_sleep = time.sleep
    monotonic = time.monotonic

    def sleep(seconds):
        """Sleep in short slices so that a timeout interrupt lands."""
        end = monotonic() + seconds
        while True:
            left = end - monotonic()
            if left <= 0:
                return
            real_sleep(min(left, 0.02))

    time.sleep = sleep

    real_setrecursionlimit = sys.setrecursionlimit

    def setrecursionlimit(limit):
        """Deep recursion overflows the WebAssembly stack and kills the runtime; the limit is capped."""
        real_setrecursionlimit(min(int(limit), recursion_limit))

    sys.setrecursionlimit = setrecursionlimit
    real_setrecursionlimit(recursion_limit)
    sys.set_int_max_str_digits(0)  # exact arithmetic on huge integers is the point of the tool
    sys.dont_write_bytecode = True
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    os.makedirs(scratch_root, exist_ok=True)

    # Snapshots of interpreter-wide state, restored after every call.
    guarded_names = [n for n in config["guardedModules"] if n in sys.modules]
    guarded_modules = [(sys.modules[n], dict(sys.modules[n].__dict__)) for n in guarded_names]
    builtins_snapshot = dict(builtins.__dict__)
    modules_snapshot = dict(sys.modules)
    sys_lists = [(lst, list(lst)) for lst in (sys.path, sys.meta_path, sys.path_hooks)]
    environ_snapshot = dict(os.environ)
    home = os.getcwd()
    stdout, stderr = sys.stdout, sys.stderr
    default_int_handler = signal.default_int_handler
    decimal_module = sys.modules.get("decimal")
    mpmath_module = sys.modules.get("mpmath")
    sympy_parameters = getattr(sys.modules.get("sympy.core.parameters"), "global_parameters", None)
    sympy_defaults = dict(vars(sympy_parameters)) if sympy_parameters is not None else None
    exc_info = sys.exc_info
    gc_enable, gc_disable, gc_isenabled = gc.enable, gc.disable, gc.isenabled
    dumps = json.dumps
    format_exception_only = traceback.format_exception_only
    getline = linecache.getline
    rmtree = shutil.rmtree
    sessions = {}
    max_sessions = int(config["maxSessions"])

    def restore_dict(namespace, snapshot):
        for key in [k for k in namespace if k not in snapshot]:
            del namespace[key]
        for key, value in snapshot.items():
            if namespace.get(key, restore_dict) is not value:
                namespace[key] = value

    def restore_state():
        """Undoes what one call may have changed in the interpreter shared by all calls."""
        restore_dict(builtins.__dict__, builtins_snapshot)
        for module, snapshot in guarded_modules:
            restore_dict(module.__dict__, snapshot)
        for key, value in modules_snapshot.items():
            if sys.modules.get(key) is not value:
                sys.modules[key] = value
        for lst, snapshot in sys_lists:
            if lst != snapshot:
                lst[:] = snapshot
        if os.environ != environ_snapshot:
            os.environ.clear()
            os.environ.update(environ_snapshot)
        real_setrecursionlimit(recursion_limit)
        sys.set_int_max_str_digits(0)
        if not gc_isenabled():
            gc_enable()
        if decimal_module is not None:
            decimal_module.setcontext(decimal_module.Context())
        if mpmath_module is not None:
            mpmath_module.mp.dps = 15
            mpmath_module.mp.pretty = False
        if sympy_parameters is not None:
            for key, value in sympy_defaults.items():
                setattr(sympy_parameters, key, value)
        os.chdir(home)
        tempfile.tempdir = None

    def scratch_for(session):
        if session is None:
            return scratch_root + "/call"
        return scratch_root + "/session-" + session

    def traceback_entries(tb):
        """(filename, line, function) for each level, read with frames allowed for this walk only."""
        nonlocal armed
        entries = []
        was_enabled = gc_isenabled()
        gc_disable()  # no finalizer of user objects may run while frames are open
        armed = False
        try:
            while tb is not None:
                code = tb.tb_frame.f_code
                entries.append((code.co_filename, tb.tb_lineno, code.co_name))
                tb = tb.tb_next
        finally:
            armed = True
            if was_enabled:
                gc_enable()
        return entries

    def describe(exc, tb, source_lines):
        """Traceback text as CPython prints it, and the line of the user's code that raised."""
        error_line = None
        lines = []
        for filename, lineno, name in traceback_entries(tb)[1:]:  # the first level is run() itself
            lines.append(f'  File "{filename}", line {lineno}, in {name}\n')
            if filename == code_filename:
                error_line = lineno
                text = source_lines[lineno - 1] if lineno and 0 < lineno <= len(source_lines) else ""
            else:
                text = getline(filename, lineno) if lineno else ""
            if text.strip():
                lines.append("    " + text.strip() + "\n")
        try:
            tail = "".join(format_exception_only(type(exc), exc))
        except BaseException:
            tail = f"{type(exc).__name__}: <the exception message could not be printed>\n"
        head = "Traceback (most recent call last):\n" if lines else ""
        return head + "".join(lines) + tail, error_line

    def run(code, session=None):
        nonlocal armed, scratch
        signal.signal(signal.SIGINT, default_int_handler)
        entry = sessions.get(session) if session is not None else None
        if entry is None:
            module = types.ModuleType("__main__")
            namespace = module.__dict__
            namespace["__builtins__"] = builtins
            entry = (module, namespace)
            if session is not None:
                if len(sessions) >= max_sessions:
                    end_session(next(iter(sessions)))
                sessions[session] = entry
        else:
            sessions[session] = sessions.pop(session)  # most recently used last
        module, namespace = entry
        scratch = scratch_for(session)
        os.makedirs(scratch, exist_ok=True)
        os.chdir(scratch)
        tempfile.tempdir = scratch
        os.environ["TMPDIR"] = scratch
        sys.modules["__main__"] = module
        if session is None:
            random.seed()
        status, error_type, text, error_line = "ok", None, "", None
        source_lines = code.splitlines()
        armed = True
        try:
            try:
                compiled = compile(code, code_filename, "exec", dont_inherit=True)
            except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as e:
                status, error_type = "error", type(e).__name__
                text = "".join(format_exception_only(type(e), e))
                error_line = getattr(e, "lineno", None)
            else:
                with warnings.catch_warnings():
                    try:
                        exec(compiled, namespace)
                    except SystemExit as e:
                        code_value = e.code
                        if code_value is not None and code_value != 0:
                            status, error_type = "error", "SystemExit"
                            text = f"SystemExit: {code_value}\n"
                    except BaseException as e:
                        status, error_type = "error", type(e).__name__
                        text, error_line = describe(e, exc_info()[2], source_lines)
                        if isinstance(e, MemoryError):
                            status = "memory"
        except BaseException as e:  # an interrupt landing between the user's code and here
            status, error_type = "error", type(e).__name__
            text = f"{type(e).__name__}\n"
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                restore_state()
                if session is None:
                    namespace.clear()
                    try:
                        rmtree(scratch, ignore_errors=True)
                    except BaseException:
                        pass
                for stream in (stdout, stderr):
                    try:
                        stream.flush()
                    except BaseException:
                        pass
                sys.stdout, sys.stderr = stdout, stderr
            finally:
                armed = False
        return dumps({"status": status, "errorType": error_type, "traceback": text, "errorLine": error_line})

    def end_session(session):
        nonlocal armed
        entry = sessions.pop(session, None)
        if entry is None:
            return False
        armed = True
        try:
            entry[1].clear()
            rmtree(scratch_for(session), ignore_errors=True)
            restore_state()
        finally:
            armed = False
        return True

    def check_isolation():
        """Walks every object Python code can reach from modules, builtins and classes, looking for
        anything that leads to JavaScript. Returns the paths of what it found (empty when sealed)."""
        found = []
        seen = set()
        roots = [("sys.modules", dict(sys.modules)), ("builtins", builtins.__dict__)]
        classes = []
        stack = [object]
        while stack:
            cls = stack.pop()
            try:
                subclasses = type.__subclasses__(cls)
            except TypeError:
                continue
            for sub in subclasses:
                if id(sub) not in seen:
                    seen.add(id(sub))
                    classes.append(sub)
                    stack.append(sub)
        roots.append(("classes", classes))
        seen = set()
        queue = list(roots)
        while queue:
            path, obj = queue.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if is_bridge(obj):
                found.append(path)
                continue
            if isinstance(obj, types.FrameType):
                continue  # frames are refused to user code
            if isinstance(obj, dict):
                children = [(repr(k)[:40], v) for k, v in list(obj.items())]
            elif isinstance(obj, types.ModuleType):
                children = [(obj.__name__, vars(obj))]
            else:
                children = [(type(c).__name__, c) for c in gc.get_referents(obj)]
            for label, child in children:
                if isinstance(child, (str, bytes, int, float)) or id(child) in seen:
                    continue
                queue.append((path + " > " + label if path.count(">") < 40 else path, child))
        return found

    sys.addaudithook(hook)
    return run, end_session, check_isolation
`;
