"""1. Configuration errors: exit 2, a message naming file:line and key, nothing started."""
import os
import signal
import subprocess
import tempfile
import time

from harness import BIN, TEST_MODULES, run_cases

GOOD_MODULE = '{ name = "src"; plugin = "test-source"; }'


def kernel_on(text):
    d = tempfile.mkdtemp(prefix="outpost-cfg-")
    path = os.path.join(d, "device.cfg")
    with open(path, "w") as f:
        f.write(text.replace("@MODDIR@", TEST_MODULES).replace("@RUN@", d + "/run"))
    r = subprocess.run([os.path.join(BIN, "outpost-kernel"), "-c", path], capture_output=True,
                       text=True, timeout=10)
    return path, r


def expect_error(text, line, key):
    path, r = kernel_on(text)
    assert r.returncode == 2, f"exit {r.returncode}, stderr: {r.stderr}"
    want = f"{path}:{line}: {key}" if line else f"{path}: {key}"
    assert want in r.stderr, f"wanted {want!r} in: {r.stderr!r}"
    assert "spawned" not in r.stderr, f"started something: {r.stderr}"
    assert not os.path.exists(os.path.dirname(path) + "/run"), "runtime dir created"
    return r.stderr


HEAD = 'device = { id = "d"; };\nruntime_dir = "@RUN@";\nmodule_dir = "@MODDIR@";\n'


def test_missing_file():
    r = subprocess.run([os.path.join(BIN, "outpost-kernel"), "-c", "/nonexistent/device.cfg"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r
    assert "/nonexistent/device.cfg" in r.stderr and "cannot read" in r.stderr, r.stderr


def test_syntax_error():
    expect_error(HEAD + "modules = (\n  { name = \"src\"; plugin = ; }\n);\n", 5, "syntax")


def test_unknown_plugin():
    err = expect_error(HEAD + "modules = (\n" + GOOD_MODULE + ",\n"
                       '  { name = "enc"; plugin = "no-such-encoder"; }\n);\n', 6, "modules.enc")
    assert "no-such-encoder" in err, err


def test_unknown_fallback():
    expect_error(HEAD + "modules = (\n"
                 '  { name = "a"; plugin = "test-source";\n    fallback = "nope"; }\n);\n', 6,
                 "modules.a")


def test_missing_key():
    err = expect_error(HEAD + "modules = (\n" + GOOD_MODULE + ",\n  { name = \"b\"; }\n);\n", 6,
                       "modules.[1]")
    assert "plugin" in err, err


def test_missing_device():
    expect_error('module_dir = "@MODDIR@";\nmodules = ( ' + GOOD_MODULE + ' );\n', 0, "device")


def test_unknown_key_is_a_typo():
    expect_error(HEAD + "modules = (\n  { name = \"a\"; plugin = \"test-source\";\n"
                 "    restrat = \"temporary\"; }\n);\n", 6, "restrat")


def test_bad_restart_value():
    expect_error(HEAD + "modules = (\n  { name = \"a\"; plugin = \"test-source\";\n"
                 "    restart = \"sometimes\"; }\n);\n", 6, "modules.a")


def test_bad_supervisor_value():
    expect_error(HEAD + "supervisor = {\n  grace = -1; };\nmodules = ( " + GOOD_MODULE + " );\n", 5,
                 "grace")


def test_duplicate_name():
    expect_error(HEAD + "modules = (\n" + GOOD_MODULE + ",\n" + GOOD_MODULE + "\n);\n", 6,
                 "modules.src")


def test_bad_profile():
    # device.profile is checked by the kernel (a misspelt one would run the
    # device as cellular, paced and at 30 fps, on a LAN), and so is any other
    # key in the device group.
    expect_error(HEAD.replace('id = "d";', 'id = "d"; profile = "LAN";') + "modules = ( " +
                 GOOD_MODULE + " );\n", 1, "device.profile")
    expect_error(HEAD.replace('id = "d";', 'id = "d"; profil = "lan";') + "modules = ( " +
                 GOOD_MODULE + " );\n", 1, "profil")


def runs_then_stops_cleanly(path):
    """The kernel takes the config, runs its test-source for 1 s, and stops on SIGTERM."""
    p = subprocess.Popen([os.path.join(BIN, "outpost-kernel"), "-c", path],
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert p.poll() is None, f"kernel exited {p.returncode}: {p.stderr.read()}"
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
    assert p.returncode == 0 and "spawned (plugin test-source)" in err, err


def test_module_dir_search_path():
    empty = tempfile.mkdtemp(prefix="outpost-empty-")
    text = (f'device = {{ id = "d"; }};\nruntime_dir = "@RUN@";\n'
            f'module_dir = [ "{empty}", "@MODDIR@" ];\n'
            'modules = ( { name = "src"; plugin = "test-source"; } );\n')
    d = tempfile.mkdtemp(prefix="outpost-cfg-", dir="/dev/shm")
    path = os.path.join(d, "device.cfg")
    with open(path, "w") as f:
        f.write(text.replace("@MODDIR@", TEST_MODULES).replace("@RUN@", d + "/run"))
    runs_then_stops_cleanly(path)


def test_include_relative_to_file():
    # configs/device.cfg keeps the uplink's keys in an included file: relative to
    # the config's folder, and a missing one is an error naming file and line.
    text = HEAD + 'modules = (\n  { name = "src"; plugin = "test-source";\n' \
        '    settings = {\n      @include "keys/src.keys"\n }; }\n);\n'
    err = expect_error(text, 7, "@include")
    assert "keys/src.keys: No such file" in err, err
    d = tempfile.mkdtemp(prefix="outpost-cfg-", dir="/dev/shm")
    os.mkdir(os.path.join(d, "keys"))
    with open(os.path.join(d, "keys", "src.keys"), "w") as f:
        f.write("fps = 7;\n")
    path = os.path.join(d, "device.cfg")
    with open(path, "w") as f:
        f.write(text.replace("@MODDIR@", TEST_MODULES).replace("@RUN@", d + "/run"))
    runs_then_stops_cleanly(path)


run_cases([test_include_relative_to_file, test_module_dir_search_path, test_missing_file, test_syntax_error, test_unknown_plugin, test_unknown_fallback,
           test_missing_key, test_missing_device, test_unknown_key_is_a_typo,
           test_bad_restart_value, test_bad_supervisor_value, test_duplicate_name,
           test_bad_profile])
