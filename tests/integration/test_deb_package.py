"""The Debian package as a Pi owner gets it: `make deb`, `dpkg -i` the three packages, check
the files, the user, the modes and the unit; run the unit's ExecStart as the pirec user (no
systemd here: setpriv with the unit's user, group, directory and environment), record one
take through the API; then remove and purge, and check that the recording survives.
Needs root (dpkg -i); leaves the machine as it found it (packages, user, /var/lib/pirec)."""
import configparser, glob, grp, os, pwd, re, shlex, shutil, signal, stat, subprocess, sys
import threading, time

sys.path.insert(0, os.path.dirname(__file__))
from test_serve_common import check, fail, skip, wait_for  # noqa: E402

SRC = os.environ["PIREC_SRC"]
TMP = os.environ["TEST_TMP"]
PKGS = ["pirec", "libpirec-record-dev", "libpirec-record0"]
UNIT = "/lib/systemd/system/pirec.service"

if os.environ.get("PIREC_SAN") == "1":
    skip("the package is built from the sources with Debian's flags; checked once, with the plain build")
if os.geteuid() != 0:
    skip("not root: dpkg -i needs root (run make check as root to test the package)")
if shutil.which("dpkg-buildpackage") is None:
    fail("dpkg-buildpackage missing: scripts/install-deps.sh --deb installs it")
st = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "pirec"], capture_output=True, text=True)
if "installed" in st.stdout and "not-installed" not in st.stdout:
    skip("a pirec package is already installed on this machine; not touching it")


def run(*args, ok=True, timeout=600):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if ok and r.returncode != 0:
        fail("%s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    return r


def dpkg(*args):
    """dpkg, waiting while another apt/dpkg on this shared machine holds the lock."""
    end = time.monotonic() + 300
    while True:
        r = run("dpkg", *args, ok=False)
        if r.returncode == 0 or "lock" not in r.stderr or time.monotonic() > end:
            break
        time.sleep(1)
    if r.returncode != 0:
        fail("dpkg %s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


user_existed = True
try:
    pwd.getpwnam("pirec")
except KeyError:
    user_existed = False
state_existed = os.path.exists("/var/lib/pirec")
server = None


def cleanup():
    if server and server.poll() is None:
        server.kill()
        server.wait()
    subprocess.run(["dpkg", "--purge"] + PKGS, capture_output=True)
    if not state_existed:
        shutil.rmtree("/var/lib/pirec", ignore_errors=True)
    if not user_existed:
        subprocess.run(["deluser", "--quiet", "--system", "pirec"], capture_output=True)
        subprocess.run(["delgroup", "--quiet", "--system", "pirec"], capture_output=True)


try:
    # --- build ---------------------------------------------------------------------
    out = os.path.join(TMP, "deb")
    r = run("make", "-s", "-C", SRC, "deb", "DEB_OUT=" + out, timeout=900)
    arch = run("dpkg", "--print-architecture").stdout.strip()
    debs = [os.path.join(out, "%s_0.1.0_%s.deb" % (p, arch)) for p in PKGS]
    for d in debs:
        check(os.path.isfile(d), "make deb did not produce %s (%s)" % (d, os.listdir(out)))
    check("lintian: no errors" in r.stdout, "lintian did not pass:\n" + r.stdout[-3000:])

    # --- install -------------------------------------------------------------------
    inst = dpkg("-i", *debs)
    for f, mode in (("/usr/bin/pirec", 0o755), ("/etc/pirec/pirec.ini", 0o644), (UNIT, 0o644),
                    ("/etc/avahi/services/pirec.service", 0o644)):
        check(os.path.isfile(f), "not installed: " + f)
        check(stat.S_IMODE(os.stat(f).st_mode) == mode, "%s: mode %o, want %o"
              % (f, stat.S_IMODE(os.stat(f).st_mode), mode))
    arch_dir = glob.glob("/usr/lib/*/libpirec-record.so.0")
    check(len(arch_dir) == 1, "libpirec-record.so.0 not installed in a multiarch dir")
    for f in ("/usr/include/pirec/record.h", "/usr/include/pirec/ringbuffer.h"):
        check(os.path.isfile(f), "not installed: " + f)
    pc = run("pkg-config", "--libs", "--static", "pirec-record", ok=False)
    check(pc.returncode == 0 and "-lpirec-record" in pc.stdout, "pkg-config pirec-record: %r %r"
          % (pc.stdout, pc.stderr))
    conff = run("dpkg-query", "-W", "-f=${Conffiles}", "pirec").stdout
    check("/etc/pirec/pirec.ini" in conff, "pirec.ini is not a conffile: %r" % conff)
    avahi = open("/etc/avahi/services/pirec.service").read()
    check("<type>_http._tcp</type>" in avahi and "<port>8080</port>" in avahi,
          "the Avahi file does not advertise _http._tcp on 8080")

    pw = pwd.getpwnam("pirec")
    check(pw.pw_uid < 1000, "pirec is not a system user (uid %d)" % pw.pw_uid)
    check(pw.pw_shell in ("/usr/sbin/nologin", "/bin/false"), "pirec has a login shell: " + pw.pw_shell)
    check("pirec" in grp.getgrnam("audio").gr_mem, "pirec is not in the audio group")
    sd = os.stat("/var/lib/pirec")
    check(sd.st_uid == pw.pw_uid and stat.S_IMODE(sd.st_mode) == 0o700,
          "/var/lib/pirec: owner %d mode %o" % (sd.st_uid, stat.S_IMODE(sd.st_mode)))
    check(os.path.islink("/etc/systemd/system/multi-user.target.wants/pirec.service"),
          "the service is not enabled at boot")

    # --- the unit --------------------------------------------------------------------
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(UNIT)
    svc = unit["Service"]
    check(svc.get("User") == "pirec" and svc.get("Group") == "audio", "unit user/group")
    check(svc.get("StateDirectory") == "pirec", "unit StateDirectory")
    for key in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome"):
        check(key in svc, "unit is not hardened: no " + key)
    check(unit["Install"].get("WantedBy") == "multi-user.target", "unit not started at boot")
    if shutil.which("systemd-analyze"):
        v = run("systemd-analyze", "verify", UNIT, ok=False)
        msgs = [ln for ln in (v.stdout + v.stderr).splitlines() if "pirec.service" in ln]
        check(v.returncode == 0 and not msgs, "systemd-analyze verify: %d\n%s%s"
              % (v.returncode, v.stdout, v.stderr))
    else:
        print("systemd-analyze not available: unit not verified")

    # --- run ExecStart as the unit would -------------------------------------------
    exec_start = shlex.split(svc["ExecStart"])
    check(exec_start[0] == "/usr/bin/pirec", "ExecStart runs %s" % exec_start[0])
    env = dict(os.environ)
    for e in shlex.split(svc.get("Environment", "")):
        k, _, v = e.partition("=")
        env[k] = v
    # port 0 and the demo tone: the machine has no sound card and 8080 may be taken.
    cmd = ["setpriv", "--reuid=pirec", "--regid=audio", "--init-groups", "--"] + exec_start + \
        ["--listen", "127.0.0.1:0", "--demo"]
    server = subprocess.Popen(cmd, cwd=svc["WorkingDirectory"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    port = []
    lines = []

    def reader():
        for raw in server.stdout:
            line = raw.decode(errors="replace")
            lines.append(line)
            m = re.search(r"listening on http://\S+:(\d+)/", line)
            if m and not port:
                port.append(int(m.group(1)))

    threading.Thread(target=reader, daemon=True).start()
    wait_for(lambda: port or server.poll() is not None, 30, "the packaged pirec to listen")
    check(port, "packaged pirec did not start:\n" + "".join(lines))
    import http.client, json

    def api(path):
        c = http.client.HTTPConnection("127.0.0.1", port[0], timeout=10)
        c.request("GET", path)
        resp = c.getresponse()
        body = resp.read()
        c.close()
        return resp.status, json.loads(body) if body[:1] in (b"{", b"[") else body

    s, obj = api("/api/recording/tone/take?client=deb")
    check(s == 200 and obj.get("token"), "take: %s %r" % (s, obj))
    tok = obj["token"]
    check(api("/api/recording/tone/start/" + tok)[0] == 200, "start")
    rec_dir = "/var/lib/pirec/recordings"
    wait_for(lambda: any(n.endswith(".flac.part") for n in os.listdir(rec_dir)), 30,
             "the take's .part under " + rec_dir)
    check(api("/api/recording/tone/stop/" + tok)[0] == 200, "stop")
    flacs = wait_for(lambda: [n for n in os.listdir(rec_dir) if n.endswith(".flac")], 30,
                     "the finished take")
    take = os.path.join(rec_dir, flacs[0])
    check(os.stat(take).st_uid == pw.pw_uid, "the take is not owned by pirec")
    s, obj = api("/api/recordings")
    check(s == 200 and any(x["name"] == flacs[0] for x in obj["recordings"]), "list: %r" % obj)
    check(os.path.isfile("/var/lib/pirec/jwt.key") and
          stat.S_IMODE(os.stat("/var/lib/pirec/jwt.key").st_mode) == 0o600,
          "the lease key is not /var/lib/pirec/jwt.key with mode 0600")
    server.send_signal(signal.SIGTERM)
    check(server.wait(30) == 0, "packaged pirec did not exit cleanly on SIGTERM:\n" + "".join(lines))
    size = os.path.getsize(take)

    # --- remove, purge: the take stays -------------------------------------------------
    dpkg("-r", *PKGS)
    check(not os.path.exists("/usr/bin/pirec"), "remove left /usr/bin/pirec")
    check(os.path.isfile("/etc/pirec/pirec.ini"), "remove (not purge) deleted the conffile")
    pr = dpkg("--purge", *PKGS)
    check(not os.path.exists("/etc/pirec/pirec.ini"), "purge left /etc/pirec/pirec.ini")
    check(not os.path.exists("/etc/systemd/system/multi-user.target.wants/pirec.service"),
          "purge left the unit enabled")
    check(os.path.isfile(take) and os.path.getsize(take) == size, "purge deleted the recording")
    check("recordings are kept" in pr.stdout + pr.stderr,
          "purge does not tell that the recordings are kept:\n" + pr.stdout + pr.stderr)
    print("ok: installed, ran as pirec, recorded %s (%d bytes), purged, recording kept"
          % (flacs[0], size))
finally:
    cleanup()
