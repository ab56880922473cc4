# The sandbox inside a warm Pyodide, run once in each interpreter by src/core/sandbox/runtime.ts (the
# browser and Node hand it this file as text). seal(config) runs once, after the packages are loaded,
# and returns run(code, session), end_session(session) and check_isolation():
#  1. it cuts Python off from JavaScript: Pyodide's bridge modules leave sys.modules and every
#     reference to a JavaScript object or to _pyodide_core left in their namespaces is replaced;
#  2. it gates the two functions that can create native modules without an import statement;
#  3. it installs an audit hook (PEP 578) that refuses bridge imports, processes, network, native
#     code, heap introspection, hand-made bytecode and writes outside the scratch directory.
# The hook keeps no state and reads no globals: everything it uses is bound as keyword defaults,
# so nothing that model code can reach (frames included) can switch it off.
# Model code runs inside execute(), whose frame holds nothing but the call's own objects; the
# functions with state (prepare, finish, end_session) are never on the stack while it runs.
import _imp
import _signal
import builtins
import gc
import io
import json
import linecache
import os
import posix
import random
import shutil
import stat
import sys
import tempfile
import time
import traceback
import types
import warnings

CODE_FILENAME = "<code>"

HOOK_SOURCE = r'''
def path_text(path, *, _str=str, _bytes=bytes, _isinstance=isinstance, _fspath=posix.fspath, _BaseException=BaseException):
    """A path argument as a plain str, for checks and messages ("?" when it is no path at all)."""
    try:
        text = _fspath(path)
        if _isinstance(text, _bytes):
            text = _bytes.decode(text, "utf-8", "surrogateescape")
        return _str.__add__("", text)
    except _BaseException:
        return "?"


def hook(event, args, *, _blocked, _bridge, _available, _refused, _writes, _dir_fd, _prefixes, _root, _devices,
         _sealed, _write_flags, _readable, _read_devices, _cpu_rlimit, _str=str, _bytes=bytes, _int=int,
         _tuple=tuple, _type=type, _isinstance=isinstance, _len=len, _getcwd=posix.getcwd, _normpath=posix._path_normpath,
         _stat=posix.stat, _getrlimit=getrlimit, _PermissionError=PermissionError,
         _ModuleNotFoundError=ModuleNotFoundError, _BaseException=BaseException, _path_text=path_text):
    if event == "import":
        name = args[0] if _len(args) > 0 else None
        if _isinstance(name, _str):
            root = _str.partition(name, ".")[0]
            if root in _blocked:
                name = _str.__add__("", name)
                if root == "micropip":
                    message = f"installing packages is not allowed in the sandbox (import of {name!r} refused); available: {_available}"
                elif root in _bridge:
                    message = f"import of {name!r} is not allowed: sandboxed code cannot reach JavaScript"
                else:
                    message = f"import of {name!r} is not allowed in the sandbox"
                raise _ModuleNotFoundError(message, name=name)
        return
    if event == "open":
        if _len(args) != 3:
            return
        path, mode, flags = args
        if _isinstance(mode, _str):
            writes = "w" in mode or "a" in mode or "x" in mode or "+" in mode
        else:
            writes = _isinstance(flags, _int) and (flags & _write_flags) != 0
        text = None
        if _isinstance(path, _str):
            text = _str.__add__("", path)
        elif _isinstance(path, _bytes):
            text = _bytes.decode(path, "utf-8", "surrogateescape")
        if (writes or _readable is not None) and not _isinstance(path, _int):
            if text is None:
                text = _path_text(path)
            if _readable is not None and _str.__contains__("/" + text + "/", "/../"):
                # Relative to a directory descriptor, ".." could climb out of what the check sees.
                raise _PermissionError(f"opening {text!r} is not allowed: paths with '..' are refused in the sandbox")
            full = _normpath(text if _str.startswith(text, "/") else _getcwd() + "/" + text)
            inside = full == _root or _str.startswith(full, _root + "/")
            if writes and not (inside or full in _devices):
                raise _PermissionError(f"writing to {text!r} is not allowed: the sandbox can only write inside {_root}")
            if _readable is not None and not writes and not inside:
                # A host's file system (CPython): reads only from the Python installation, and no
                # directory descriptors, which writes relative to them (dir_fd) would get past the path check.
                if not (_str.startswith(full + "/", _readable) or full in _read_devices):
                    raise _PermissionError(f"reading {text!r} is not allowed: the sandbox reads only its scratch directory and the Python installation")
                try:
                    is_dir = (_stat(full).st_mode & 0o170000) == 0o040000
                except _BaseException:
                    is_dir = False
                if is_dir:
                    raise _PermissionError(f"opening the directory {text!r} is not allowed: the sandbox opens directories only inside {_root}")
        if text is not None and _str.endswith(text, ".pyc"):
            # Compiled files are not trusted; importlib falls back to the source when this fails.
            raise _PermissionError("reading compiled bytecode is not allowed in the sandbox")
        return
    if event == "object.__getattr__":
        if _len(args) == 2 and (args[1] == "gi_frame" or args[1] == "__defaults__" or args[1] == "__kwdefaults__"):
            target = args[0]
            for sealed in _sealed:
                if target is sealed:
                    raise _PermissionError("the internals of the sandbox's own functions are not accessible")
        return
    if event == "resource.setrlimit" and _cpu_rlimit is not None:
        # The host process (CPython) sets its CPU time limit before each call; nothing else may change.
        limits = args[1] if _len(args) == 2 else None
        if not (args[0] == _cpu_rlimit and _type(limits) is _tuple and _len(limits) == 2 and _type(limits[0]) is _int
                and _type(limits[1]) is _int and limits[1] == _getrlimit(_cpu_rlimit)[1]):
            raise _PermissionError("changing resource limits is not allowed in the sandbox")
        return
    what = _refused.get(event) if _isinstance(event, _str) else None
    if what is not None:
        raise _PermissionError(f"{what} is not allowed in the sandbox")
    positions = _writes.get(event) if _isinstance(event, _str) else None
    if positions is not None:
        fd_at = _dir_fd.get(event)
        dir_fd = args[fd_at] if fd_at is not None and _len(args) > fd_at else None
        if _isinstance(dir_fd, _int) and dir_fd >= 0:  # no directory descriptor is None, or -1 here
            if event == "os.chmod" or event == "os.chown" or event == "os.utime":
                raise _PermissionError("changing file modes relative to a directory descriptor is not allowed in the sandbox")
            if _readable is None:
                return  # relative to an open directory: the read-only file system modes decide
            # A host's file system has no such modes; directories open only inside the scratch
            # directory and paths have no "..", so the path is checked as if relative to it.
        for i in positions:
            if i >= _len(args):
                continue
            if _isinstance(args[i], _int):
                if event == "os.chmod" or event == "os.chown":
                    raise _PermissionError("changing the mode of an open file is not allowed in the sandbox")
                continue
            target = args[i]
            text = _path_text(target)
            if _readable is not None and _str.__contains__("/" + text + "/", "/../"):
                raise _PermissionError(f"{event} on {text!r} is not allowed: paths with '..' are refused in the sandbox")
            full = _normpath(text if _str.startswith(text, "/") else _getcwd() + "/" + text)
            if not (full == _root or _str.startswith(full, _root + "/")):
                raise _PermissionError(f"{event} on {text!r} is not allowed: the sandbox can only change files inside {_root}")
        return
    if _isinstance(event, _str) and _str.startswith(event, _prefixes):
        raise _PermissionError(f"network access and native code ({event}) are not allowed in the sandbox")
'''

# importlib.import_module raises no "import" audit event; this finder refuses the same names there.
# It shares nothing with the hook: code can reach (and spoil) the finder, never the hook.
FINDER_SOURCE = r'''
def find_spec(name, path=None, target=None, *, _blocked, _bridge, _isinstance=isinstance, _str=str,
              _ModuleNotFoundError=ModuleNotFoundError):
    if _isinstance(name, _str):
        root = _str.partition(name, ".")[0]
        if root in _blocked:
            reason = "sandboxed code cannot reach JavaScript" if root in _bridge else "it is not available in the sandbox"
            raise _ModuleNotFoundError(f"import of {name!r} is not allowed: {reason}", name=name)
    return None
'''

EXECUTE_SOURCE = r'''
def execute(code, compiled, namespace, stateless, *, _filename, _graveyard, _exec=exec, _exc_info=sys.exc_info,
            _BaseException=BaseException, _SystemExit=SystemExit, _MemoryError=MemoryError, _type=type,
            _len=len, _str=str, _isinstance=isinstance, _format_only=traceback.format_exception_only,
            _getline=linecache.getline, _dumps=json.dumps, _signal=_signal.signal, _SIGINT=_signal.SIGINT,
            _SIG_IGN=_signal.SIG_IGN, _default_int_handler=_signal.default_int_handler,
            _catch_warnings=warnings.catch_warnings):
    _graveyard.clear()  # objects displaced by the previous call's clean-up are released here
    status, error_type, text, error_line = "ok", None, "", None
    try:
        _signal(_SIGINT, _default_int_handler)
        with _catch_warnings():
            try:
                _exec(compiled, namespace)
            except _SystemExit as e:
                if e.code is not None and e.code != 0:
                    status, error_type = "error", "SystemExit"
                    text = f"SystemExit: {e.code}\n"
            except _BaseException as e:
                status, error_type = ("memory" if _isinstance(e, _MemoryError) else "error"), _type(e).__name__
                lines, tb = [], _exc_info()[2].tb_next  # the first level is this function
                source = code.splitlines()
                while tb is not None:
                    frame_code, lineno = tb.tb_frame.f_code, tb.tb_lineno
                    lines.append(f'  File "{frame_code.co_filename}", line {lineno}, in {frame_code.co_name}\n')
                    if frame_code.co_filename == _filename:
                        error_line = lineno
                        line = source[lineno - 1] if lineno and 0 < lineno <= _len(source) else ""
                    else:
                        line = _getline(frame_code.co_filename, lineno) if lineno else ""
                    if line.strip():
                        lines.append("    " + line.strip() + "\n")
                    tb = tb.tb_next
                try:
                    tail = "".join(_format_only(_type(e), e))
                except _BaseException:
                    tail = f"{_type(e).__name__}: <the exception message could not be printed>\n"
                text = ("Traceback (most recent call last):\n" if lines else "") + "".join(lines) + tail
    except _BaseException as e:  # an interrupt landing after the user's code
        status, error_type, text = "error", _type(e).__name__, f"{_type(e).__name__}\n"
    finally:
        _signal(_SIGINT, _SIG_IGN)
    if stateless:
        namespace.clear()  # finalizers of the user's objects run here, where there is nothing to find
    return _dumps({"status": status, "errorType": error_type, "traceback": _str.__add__("", text), "errorLine": error_line})
'''


def seal(config_json, protected=(), open_stream=None):
    """protected: more objects whose frames and defaults code may not read (a host's own generators);
    open_stream(fd): reopens sys.stdout (1) or sys.stderr (2) after code closed it (default: a plain text file)."""
    config = json.loads(config_json)
    scratch_root = config["scratchRoot"]
    recursion_limit = int(config["recursionLimit"])
    blocked_imports = frozenset(config["blockedImports"])
    bridge_roots = frozenset(config["bridgeRoots"])
    trusted_prefixes = tuple(config["trustedPrefixes"])
    scratch_mode = int(config.get("scratchMode", 0o777))

    # --- 1. Cut the bridge to JavaScript --------------------------------------------------------
    # Pyodide routes time.sleep and asyncio.run through its JavaScript event loop; restore the originals.
    time.sleep = getattr(time.sleep, "__wrapped__", time.sleep)
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        asyncio.run = getattr(asyncio.run, "__wrapped__", asyncio.run)
    core = sys.modules.get("_pyodide_core")
    try:
        from pyodide.ffi import JsProxy as js_proxy_type
    except ImportError:
        js_proxy_type = None

    bridge_modules = ("_pyodide_core", "pyodide.ffi", "_pyodide._core_docs")
    # The types _pyodide_core defines (converters, signatures) report "builtins" as their module.
    core_types = tuple(v for v in vars(core).values() if isinstance(v, type)) if core is not None else ()

    def is_bridge(value):
        if core is not None and value is core:
            return True
        if js_proxy_type is not None and isinstance(value, js_proxy_type):
            return True
        if not isinstance(value, type) and (type(value).__module__ in bridge_modules or isinstance(value, core_types)):
            return True  # JsNull, converters and the like; classes themselves are harmless
        if type(value) in (types.BuiltinFunctionType, types.MethodWrapperType, types.MethodType):
            owner = getattr(value, "__self__", None)
            return owner is not None and owner is not value and is_bridge(owner)
        return False

    def severed(*args, **kwargs):
        raise PermissionError("the JavaScript bridge is not available in the sandbox")

    def scrub(container, depth):
        """Replaces bridge references in a namespace, and in the dicts, lists and objects it holds."""
        items = list(container.items()) if isinstance(container, dict) else list(enumerate(container))
        for key, value in items:
            if is_bridge(value):
                container[key] = severed
            elif depth > 0 and isinstance(value, (dict, list)):
                scrub(value, depth - 1)
            elif depth > 0 and isinstance(getattr(value, "__dict__", None), dict) and not isinstance(value, (type, types.ModuleType, types.FunctionType)):
                scrub(value.__dict__, depth - 1)

    def from_bridge(entry):
        module = getattr(entry, "__module__", None) or type(entry).__module__
        return isinstance(module, str) and module.partition(".")[0] in bridge_roots

    sys.meta_path[:] = [f for f in sys.meta_path if not from_bridge(f)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if not from_bridge(h)]
    sys.path_importer_cache.clear()
    for name in [n for n in sys.modules if n.partition(".")[0] in bridge_roots]:
        module = sys.modules.pop(name)
        if isinstance(module, types.ModuleType):
            scrub(module.__dict__, 3)
    for module in list(sys.modules.values()):
        if isinstance(module, types.ModuleType):
            scrub(module.__dict__, 0)
    for cls in all_classes():  # classes stay reachable through object.__subclasses__()
        if from_bridge(cls):
            for key, value in list(vars(cls).items()):
                if is_bridge(value):
                    try:
                        setattr(cls, key, severed)
                    except (TypeError, AttributeError):
                        pass  # immutable built-in types hold no such values

    # --- 2. Gate module creation that bypasses import statements ---------------------------------
    gates = []

    def gated(original, allow):
        """Wraps original so that it runs only for allowed module names and origins. original lives in
        a generator frame, which the audit hook refuses to hand out; no code from outside runs while
        that frame is on the stack (the spec is read before, and rebuilt from checked strings)."""
        def gate():
            result = None
            while True:
                name, origin = yield result
                if allow(name, origin):
                    try:
                        result = (True, original(types.SimpleNamespace(name=name, origin=origin)))
                    except BaseException as e:
                        result = (False, e)
                else:
                    result = (False, ModuleNotFoundError(f"creating module {name!r} is not allowed in the sandbox"))

        generator = gate()
        next(generator)
        gates.append(generator)
        send = generator.send

        def create(spec, *rest):
            name, origin = getattr(spec, "name", None), getattr(spec, "origin", None)
            if type(name) is not str or not (origin is None or type(origin) is str):
                raise ModuleNotFoundError("a module spec needs a name and an origin that are plain strings")
            ok, value = send((name, origin))
            if ok:
                return value
            raise value
        return create

    def allow_builtin(name, origin):
        return name.partition(".")[0] not in blocked_imports and name not in ("_imp", "sys", "builtins")

    def allow_dynamic(name, origin):
        return allow_builtin(name, origin) and origin is not None and origin.startswith(trusted_prefixes) and ".." not in origin

    _imp.create_builtin = gated(_imp.create_builtin, allow_builtin)
    _imp.create_dynamic = gated(_imp.create_dynamic, allow_dynamic)

    # --- Make the runtime survive what model code may do ------------------------------------------
    def exit_instead(code=0):
        raise SystemExit(code)

    def abort_instead():
        raise SystemExit(134)

    for module in (os, posix):
        module._exit = exit_instead
        module.abort = abort_instead

    def sleep(seconds, _sleep=time.sleep, _monotonic=time.monotonic, _min=min):
        """Sleeps in short slices so that a timeout interrupt lands."""
        end = _monotonic() + seconds
        while True:
            left = end - _monotonic()
            if left <= 0:
                return
            _sleep(_min(left, 0.02))

    time.sleep = sleep

    def setrecursionlimit(limit, _set=sys.setrecursionlimit, _cap=recursion_limit, _min=min, _int=int):
        """Deep recursion overflows the WebAssembly stack and kills the runtime, so the limit is capped."""
        _set(_min(_int(limit), _cap))

    real_setrecursionlimit = sys.setrecursionlimit
    sys.setrecursionlimit = setrecursionlimit
    real_setrecursionlimit(recursion_limit)
    sys.set_int_max_str_digits(0)  # exact arithmetic on huge integers is what the tool is for
    sys.dont_write_bytecode = True
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # interrupts only land while user code runs
    os.makedirs(scratch_root, exist_ok=True)
    for name in config["stdlibPreload"]:
        __import__(name)  # imported now, so that their state is in the snapshot below

    # --- State restored after every call ------------------------------------------------------------
    guarded_modules = [(sys.modules[n], dict(sys.modules[n].__dict__)) for n in config["guardedModules"] if n in sys.modules]
    modules_snapshot = dict(sys.modules)
    sys_lists = [(lst, list(lst)) for lst in (sys.path, sys.meta_path, sys.path_hooks)]
    environ_snapshot = dict(os.environ)
    home = os.getcwd()
    stdout, stderr = sys.stdout, sys.stderr
    stream_files = {}  # what fds 1 and 2 are now: a redirect to anything else breaks the output
    for fd in (1, 2):
        try:
            info = os.fstat(fd)
            stream_files[fd] = (info.st_dev, info.st_ino)
        except OSError:
            stream_files[fd] = None
    decimal_module = sys.modules.get("decimal")
    mpmath_module = sys.modules.get("mpmath")
    sympy_parameters = getattr(sys.modules.get("sympy.core.parameters"), "global_parameters", None)
    sympy_defaults = dict(vars(sympy_parameters)) if sympy_parameters is not None else None
    graveyard = []
    sessions = {}
    max_sessions = int(config["maxSessions"])
    missing = object()

    def restore_dict(namespace, snapshot):
        for key in [k for k in namespace if type(k) is str and k not in snapshot]:
            graveyard.append(namespace.pop(key))
        for key, value in snapshot.items():
            current = namespace.get(key, missing)
            if current is not value:
                graveyard.append(current)  # released by the next execute(), never in this frame
                namespace[key] = value

    def restore_state():
        """Undoes what a call may have changed in the interpreter that all calls share."""
        for module, snapshot in guarded_modules:
            restore_dict(module.__dict__, snapshot)
        for key, value in modules_snapshot.items():
            current = sys.modules.get(key, missing)
            if current is not value:
                graveyard.append(current)
                sys.modules[key] = value
        for lst, snapshot in sys_lists:
            if len(lst) != len(snapshot) or any(a is not b for a, b in zip(lst, snapshot)):
                graveyard.append(list(lst))
                lst[:] = snapshot
        if dict(os.environ) != environ_snapshot:
            os.environ.clear()
            os.environ.update(environ_snapshot)
        real_setrecursionlimit(recursion_limit)
        sys.set_int_max_str_digits(0)
        sys.stdout, sys.stderr = stdout, stderr
        if not gc.isenabled():
            gc.enable()
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
        return scratch_root + ("/call" if session is None else "/session-" + session)

    def wipe_scratch():
        """Removes everything in the scratch root but the directories of live sessions."""
        keep = {scratch_for(s).rpartition("/")[2] for s in sessions}
        for name in os.listdir(scratch_root):
            if name in keep:
                continue
            path = scratch_root + "/" + name
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def prepare(code, session=None):
        """Sets up a call and compiles the code. Returns (compiled, namespace, None), or
        (None, None, result JSON) when the code does not compile."""
        gc.disable()
        try:
            return prepare_call(code, session)
        finally:
            gc.enable()

    def prepare_call(code, session):
        module = sessions.get(session) if session is not None else None
        if module is None:
            module = types.ModuleType("__main__")
            module.__dict__["__builtins__"] = builtins
            if session is not None:
                if len(sessions) >= max_sessions:
                    end_session(next(iter(sessions)))
                sessions[session] = module
        else:
            sessions[session] = sessions.pop(session)  # most recently used last
        namespace = module.__dict__
        scratch = scratch_for(session)
        os.makedirs(scratch, exist_ok=True)
        os.chdir(scratch)
        tempfile.tempdir = scratch
        os.environ["TMPDIR"] = scratch
        sys.modules["__main__"] = module  # pickle, dataclasses and typing look the caller up there
        if session is None:
            random.seed()  # like a fresh process
        linecache.cache[CODE_FILENAME] = (len(code), None, code.splitlines(True), CODE_FILENAME)  # for traceback.print_exc()
        try:
            compiled = compile(code, CODE_FILENAME, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as e:
            text = "".join(traceback.format_exception_only(type(e), e))
            line = getattr(e, "lineno", None)
            return None, None, json.dumps({"status": "error", "errorType": type(e).__name__, "traceback": text, "errorLine": line if type(line) is int else None})
        return compiled, namespace, None

    def finish(session=None):
        """Restores shared state and wipes the scratch directory of a stateless call. Returns None, or
        why the interpreter cannot be used any more (the worker is then replaced)."""
        gc.disable()  # user finalizers must not run while this frame is on the stack
        try:
            for stream in (stdout, stderr):
                try:
                    stream.flush()
                except BaseException:
                    pass
            restore_state()
            forget_scratch_modules()
            os.chmod(scratch_root, scratch_mode)
            if session is None:
                wipe_scratch()
            if not all(gate.gi_suspended for gate in gates):
                return "an import gate was closed; this interpreter cannot create builtin modules any more"
            return reopen_streams()
        except BaseException as e:
            return f"restoring the interpreter failed: {type(e).__name__}: {e}"
        finally:
            gc.enable()

    def reopen_streams():
        """sys.stdout and sys.stderr as the sandbox set them up, reopened if the call closed them."""
        nonlocal stdout, stderr
        for fd in (1, 2):
            try:
                info = os.fstat(fd)
                broken = not (stat.S_ISCHR(info.st_mode) or (info.st_dev, info.st_ino) == stream_files[fd])
            except OSError:
                broken = True
            if broken:
                return f"file descriptor {fd} was closed or redirected; this interpreter cannot report output any more"
        reopen = open_stream or (lambda fd: io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace"))
        if stdout.closed:
            stdout = reopen(1)
        if stderr.closed:
            stderr = reopen(2)
        for stream in (stdout, stderr):
            stream.reconfigure(errors="backslashreplace", line_buffering=False, write_through=False)
        sys.stdout, sys.stderr = stdout, stderr
        return None

    def forget_scratch_modules():
        """Drops modules imported from the scratch directory (or planted in sys.modules) by the call,
        so that a later call importing the same name gets the real one."""
        for name, module in list(sys.modules.items()):
            if name in modules_snapshot:
                continue
            origin = module.__dict__.get("__file__") if type(module) is types.ModuleType else None
            if type(module) is not types.ModuleType or (type(origin) is str and origin.startswith(scratch_root + "/")):
                graveyard.append(sys.modules.pop(name))

    def end_session(session):
        module = sessions.pop(session, None)
        if module is None:
            return False
        graveyard.append(module)  # released by the next execute()
        shutil.rmtree(scratch_for(session), ignore_errors=True)
        return True

    # --- Build the hook and execute() in namespaces of their own --------------------------------
    resource = sys.modules.get("resource")
    hook_scope = {"__builtins__": builtins, "posix": posix, "getrlimit": getattr(resource, "getrlimit", None)}
    exec(HOOK_SOURCE, hook_scope)
    exec(FINDER_SOURCE, hook_scope)
    refused = {
        "os.system": "running shell commands", "os.exec": "starting processes", "os.posix_spawn": "starting processes",
        "os.spawn": "starting processes", "os.fork": "starting processes", "os.forkpty": "starting processes",
        "os.kill": "sending signals", "os.killpg": "sending signals", "subprocess.Popen": "starting processes",
        "pty.spawn": "starting processes", "urllib.Request": "network access", "webbrowser.open": "network access",
        "gc.get_objects": "heap introspection (gc.get_objects)", "gc.get_referrers": "heap introspection (gc.get_referrers)",
        "gc.get_referents": "heap introspection (gc.get_referents)", "sys._current_frames": "inspecting other threads",
        "sys.settrace": "tracing (sys.settrace)", "sys.setprofile": "profiling hooks (sys.setprofile)",
        "sys.monitoring.register_callback": "monitoring callbacks", "sys.remote_exec": "remote execution",
        "sys.addaudithook": "adding audit hooks", "code.__new__": "building code objects by hand",
        "marshal.load": "loading marshalled code", "marshal.loads": "loading marshalled code",
    }
    writes = {
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.symlink": (0, 1),
        "os.link": (0, 1), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
        "os.chflags": (0,), "os.lchflags": (0,), "os.lchmod": (0,), "os.lchown": (0,), "os.setxattr": (0,),
        "os.removexattr": (0,), "shutil.rmtree": (0,), "tempfile.mkstemp": (0,), "tempfile.mkdtemp": (0,),
    }
    refused.update(config.get("refusedExtra", {}))
    readable = config.get("readablePrefixes")
    dir_fd = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 2, "os.symlink": 2, "os.chmod": 2, "os.chown": 3, "os.utime": 3, "shutil.rmtree": 1}
    hook_scope["hook"].__kwdefaults__.update(
        _blocked=blocked_imports, _bridge=bridge_roots, _available=", ".join(config["available"]) or "none",
        _refused=types.MappingProxyType(refused), _writes=types.MappingProxyType(writes),
        _dir_fd=types.MappingProxyType(dir_fd),
        _prefixes=("socket.", "ctypes.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.", "http.client."),
        _root=scratch_root, _devices=frozenset(("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty")),
        _sealed=tuple(gates) + (sys.setrecursionlimit, time.sleep, os._exit, os.abort, hook_scope["find_spec"]) + tuple(protected),
        _write_flags=os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
        # Only on a host's file system (CPython): where reads may go.
        _readable=tuple(p.rstrip("/") + "/" for p in readable) if readable is not None else None,
        _read_devices=frozenset(("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")),
        _cpu_rlimit=config.get("cpuRlimit"),
    )
    hook_scope["find_spec"].__kwdefaults__.update(_blocked=blocked_imports, _bridge=bridge_roots)
    sys.meta_path.insert(0, types.SimpleNamespace(find_spec=hook_scope["find_spec"]))
    sys_lists[1] = (sys.meta_path, list(sys.meta_path))
    execute_scope = {"__builtins__": builtins, "sys": sys, "traceback": traceback, "linecache": linecache, "json": json,
                     "_signal": _signal, "warnings": warnings}
    exec(EXECUTE_SOURCE, execute_scope)
    execute = execute_scope["execute"]
    execute.__kwdefaults__.update(_filename=CODE_FILENAME, _graveyard=graveyard)
    execute_scope.clear()
    hook = hook_scope["hook"]
    hook_scope.clear()

    isolation_report = check_isolation(is_bridge) if config["checkIsolation"] else None
    sys.addaudithook(hook)

    def isolation():
        return isolation_report

    return prepare, execute, finish, end_session, isolation


def all_classes():
    """Every class, found the way model code could: through object.__subclasses__()."""
    classes, seen, stack = [], set(), [object]
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
    return classes


def check_isolation(is_bridge):
    """Walks every object reachable from modules, builtins and classes, looking for anything that
    leads to JavaScript. Returns the paths found (empty when the seal holds)."""
    found = []
    seen = set()
    queue = [("sys.modules", dict(sys.modules)), ("builtins", builtins.__dict__), ("classes", all_classes())]
    while queue:
        path, obj = queue.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if is_bridge(obj):
            found.append(path)
            continue
        if isinstance(obj, dict):
            children = [(repr(k)[:40], v) for k, v in list(obj.items())]
        elif isinstance(obj, types.ModuleType):
            children = [(obj.__name__, vars(obj))]
        else:
            children = [(type(c).__name__, c) for c in gc.get_referents(obj)]
        for label, child in children:
            if not isinstance(child, (str, bytes, int, float)) and id(child) not in seen:
                queue.append((path + " > " + label if path.count(">") < 40 else path, child))
    return found
