"""A clock-paced ALSA capture device without a sound card, for the integration tests.

JACK's dummy backend runs on a timer; the ALSA `jack` PCM (libasound2-plugins) reads its
capture ports and a `plug` PCM around it converts to the integer formats pirec asks for.
Each JackDummy runs its own server (a unique JACK_DEFAULT_SERVER name) and writes its own
~/.asoundrc under a HOME inside TEST_TMP, so tests never share a server or a user config.

    jack = JackDummy(TMP)            # writes TMP/jackhome/.asoundrc, nothing runs yet
    jack.start()                     # jackd --no-realtime -d dummy, waits until it serves
    subprocess.run([BIN, "record", "--pcm", JackDummy.PCM, ...], env=jack.env)
    jack.kill()                      # the server dies: the device falls silent, no error
    jack.stop()                      # at the end (idempotent)

jackd2 and libasound2-plugins come from `scripts/install-deps.sh --test`; a missing one
fails the test (the README promises them).
"""
import glob, os, shutil, signal, subprocess, time, uuid

ASOUNDRC = """\
pcm.jackcap {
    type jack
    capture_ports { 0 system:capture_1 1 system:capture_2 }
    playback_ports { 0 system:playback_1 1 system:playback_2 }
}
pcm.jackplug { type plug slave.pcm "jackcap" }
"""


class JackDummy:
    PCM = "jackplug"

    def __init__(self, tmp, rate=48000, period=480):
        for tool in ("jackd", "jack_lsp"):
            if not shutil.which(tool):
                raise SystemExit("FAIL: %s is missing: run scripts/install-deps.sh --test "
                                 "(package jackd2)" % tool)
        plugin_dirs = ["/usr/lib/x86_64-linux-gnu/alsa-lib", "/usr/lib/aarch64-linux-gnu/alsa-lib",
                       "/usr/lib/arm-linux-gnueabihf/alsa-lib", "/usr/lib/alsa-lib"]
        if not any(os.path.exists(os.path.join(d, "libasound_module_pcm_jack.so"))
                   for d in plugin_dirs):
            raise SystemExit("FAIL: the ALSA jack plugin is missing: run "
                             "scripts/install-deps.sh --test (package libasound2-plugins)")
        self.rate, self.period = rate, period
        self.name = "pirec-test-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        self.home = os.path.join(tmp, "jackhome")
        os.makedirs(self.home, exist_ok=True)
        with open(os.path.join(self.home, ".asoundrc"), "w") as f:
            f.write(ASOUNDRC)
        self.log_path = os.path.join(tmp, "jackd.log")
        self.env = dict(os.environ, HOME=self.home, JACK_DEFAULT_SERVER=self.name,
                        JACK_NO_AUDIO_RESERVATION="1", JACK_NO_START_SERVER="1")
        self.proc = None

    def start(self, deadline_s=30):
        """Starts jackd and returns once a client sees its capture ports."""
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            ["jackd", "--no-realtime", "-d", "dummy", "-r", str(self.rate), "-p",
             str(self.period), "-C", "2", "-P", "2"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                hint = ""
                if "Too many servers" in self.log():
                    hint = (" (JACK's server registry is full of servers killed with SIGKILL: "
                            "when no jackd runs, remove /dev/shm/jack-shm-registry)")
                raise SystemExit("FAIL: jackd exited (%d)%s: %s" % (self.proc.returncode, hint,
                                                                     self.log()))
            r = subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True)
            if r.returncode == 0 and "system:capture_2" in r.stdout:
                return
            time.sleep(0.1)
        raise SystemExit("FAIL: jackd did not serve within %d s: %s" % (deadline_s, self.log()))

    def kill(self):
        """Kills the server mid-stream: the ALSA jack PCM just stops delivering, with no
        error, like a frozen USB interface. SIGTERM, not SIGKILL: a SIGKILLed jackd keeps
        its slot in JACK's server registry (/dev/shm/jack-shm-registry, 8 slots, freed
        only when a server of the same name starts again), so unique names would fill it.
        Returns the monotonic time of the kill."""
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.proc = None
        return t

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        # a killed server leaves its semaphores and segments, named after it, in /dev/shm
        for p in glob.glob("/dev/shm/*%s*" % self.name):
            try:
                os.unlink(p)
            except OSError:
                pass

    def xruns(self):
        """Late cycles of the dummy backend so far. Each one moves its clock back by the
        lateness (JACK restarts its timer anchor), so under load the dummy clock crawls:
        a loss of timing is then real, not a false alarm."""
        try:
            with open(self.log_path) as f:
                return f.read().count("XRun")
        except OSError:
            return 0

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-1500:]
        except OSError:
            return ""
