"""Files past 4 GiB, the limits of a 32-bit Pi (armhf: make check runs this through qemu):
1. `pirec record --source file:` accepts a 4.5 GiB input (a 32-bit off_t made it "not a
   regular file").
2. send -> ingest appends past 4 GiB: the stream's file already holds 4 GiB - 1 MiB
   (sparse), `pirec send` adds 8 MiB of noise; the bytes land at their offsets.
3. (32-bit builds, or PIREC_LARGE_TAKE=1: libFLAC reads 4 GiB of padding to list the take,
   a minute or two under qemu) A take killed with SIGKILL, moved past 4 GiB (4 GiB of PADDING metadata, sparse, between
   its header and its frames: still a valid FLAC file), is finalized by the next
   `pirec serve`, decodes (flac -t), is listed with its size and length, and downloads with
   the right Content-Length, also in a range that straddles 4 GiB.
4. PIREC_LARGE_TAKE=1 (not in make check: minutes, 9 GB of disk): the take writer itself
   writes a take past 4 GiB from a noise file, is killed, `pirec repair` finalizes it,
   and the API lists and serves it."""
import json, os, re, shutil, signal, socket, struct, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve_common as common  # noqa: E402
from test_serve_common import BIN, TMP, Server, check, fail, skip, wait_for  # noqa: E402

GIB = 1 << 30
MIB = 1 << 20
if os.environ.get("PIREC_EXEC"):
    common.SLOW = 5          # qemu on a busy machine: deadlines only, nothing is timed
if shutil.disk_usage(TMP).free < 2 * GIB:
    skip("needs 2 GB free in %s (sparse files, 50 MB written)" % TMP)


def run(*args, timeout=300):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout)


# --- 1. a 4.5 GiB input file is a regular file -----------------------------------------
big_in = os.path.join(TMP, "big_input.raw")
with open(big_in, "wb") as f:
    f.truncate(9 * GIB // 2)
r = run("record", "--source", "file:" + big_in, "--format", "S16_LE", "--rate", "48000",
        "--channels", "2", "--seconds", "1", "--out", os.path.join(TMP, "from_big.flac"),
        "--min-free-mb", "1")
check(r.returncode == 0, "pirec record refuses a 4.5 GiB input: %s" % r.stderr.strip())
os.unlink(big_in)

# --- 2. send -> ingest past 4 GiB -----------------------------------------------------------
ing_dir = os.path.join(TMP, "ingest")
os.makedirs(ing_dir)
noise = os.urandom(8 * MIB)
noise_path = os.path.join(TMP, "noise.bin")
open(noise_path, "wb").write(noise)
start = 4 * GIB - MIB
with open(os.path.join(ing_dir, "big.raw"), "wb") as f:
    f.truncate(start)
ing = subprocess.Popen([BIN, "ingest", "--listen", "127.0.0.1:0", "--dir", ing_dir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
try:
    port = None
    for line in ing.stdout:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    check(port, "pirec ingest did not print its port")
    r = run("send", "file://" + noise_path, "ws://127.0.0.1:%d/big.raw" % port, "--give-up", "60")
    check(r.returncode == 0, "pirec send past 4 GiB: %s %s" % (r.stdout, r.stderr))
finally:
    ing.send_signal(signal.SIGTERM)
    try:
        ing.wait(60 * common.SLOW)
    except subprocess.TimeoutExpired:
        ing.kill()
        ing.wait()
got = os.path.join(ing_dir, "big.raw")
check(os.path.getsize(got) == start + len(noise), "ingest file size %d, want %d"
      % (os.path.getsize(got), start + len(noise)))
with open(got, "rb") as f:
    f.seek(start)
    check(f.read() == noise, "the bytes ingest wrote past 4 GiB are not the ones sent")
shutil.rmtree(ing_dir)


# --- 3. a killed take moved past 4 GiB: repaired, listed, downloaded ------------------------
with open(os.path.join(os.environ["PIREC_BUILD"], "pirec"), "rb") as f:
    is32 = f.read(5)[4] == 1                               # ELFCLASS32
if not is32 and os.environ.get("PIREC_LARGE_TAKE") != "1":
    print("ok: input and ingest past 4 GiB (the take past 4 GiB runs for 32-bit builds "
          "and with PIREC_LARGE_TAKE=1)")
    sys.exit(0)

def killed_take(out, src, extra, grow_to, deadline):
    """Starts `pirec record`, SIGKILLs it once its .part holds grow_to bytes."""
    p = subprocess.Popen([BIN, "record", "--source", "file:" + src, "--out", out,
                          "--min-free-mb", "1", "--flush-ms", "100"] + extra,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    part = out + ".part"
    try:
        wait_for(lambda: (os.path.exists(part) and os.path.getsize(part) > grow_to)
                 or p.poll() is not None, deadline, "the take to grow past %d bytes" % grow_to)
        if p.poll() is not None:
            fail("pirec record ended before it was killed: %s" % p.stdout.read())
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    return part


def flac_blocks(data):
    """(type, offset, length) of each metadata block, and where the frames start."""
    check(data[:4] == b"fLaC", "not a FLAC file")
    off, blocks = 4, []
    while True:
        hdr = data[off]
        length = int.from_bytes(data[off + 1:off + 4], "big")
        blocks.append((hdr & 0x7F, off, length))
        off += 4 + length
        if hdr & 0x80:
            return blocks, off


def http_get(port, name, headers):
    s = socket.create_connection(("127.0.0.1", port), timeout=60 * common.SLOW)
    s.sendall(("GET /api/recordings/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n"
               % (name, port, "".join("%s: %s\r\n" % kv for kv in headers.items()))).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    head, _, body = buf.partition(b"\r\n\r\n")
    return s, head.decode(errors="replace"), body


def check_served(rec_dir, final, rate, channels, width):
    """The next `pirec serve` lists FINAL with its size and serves it past 4 GiB."""
    srv = Server("serve-" + os.path.basename(final), demo=True, args=("--recordings", rec_dir))
    try:
        check(os.path.exists(final) and not os.path.exists(final + ".part"),
              "the killed take was not finalized: %r" % os.listdir(rec_dir))
        size = os.path.getsize(final)
        check(size > 4 * GIB, "finalized take is %d bytes" % size)
        # libFLAC reads through all metadata for the tags: 4 GiB of padding takes a while
        t0 = time.monotonic()
        st, _, body = srv.request("GET", "/api/recordings", timeout=300)
        print("listing took %.1f s (reported, not asserted)" % (time.monotonic() - t0))
        check(st == 200, "GET /api/recordings: %d" % st)
        obj = json.loads(body)
        ent = [x for x in obj["recordings"] if x["name"] == os.path.basename(final)]
        check(ent, "the repaired take is not listed: %r" % obj)
        ent = ent[0]
        check(ent["bytes"] == size, "listed bytes %r, the file has %d" % (ent["bytes"], size))
        check(ent["complete"] and ent["rate"] == rate and ent["channels"] == channels,
              "entry %r" % ent)
        s, head, _ = http_get(srv.port, ent["name"], {})
        s.close()                    # the headers are what is checked: no 4 GB transfer
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        check(head.startswith("HTTP/1.1 200") and m and int(m.group(1)) == size,
              "download of %d bytes answers:\n%s" % (size, head))
        for lo, hi in ((4 * GIB - 100, 4 * GIB + 99), (size - 1000, size - 1)):
            s, head, body = http_get(srv.port, ent["name"], {"Range": "bytes=%d-%d" % (lo, hi)})
            while len(body) < hi - lo + 1:
                b = s.recv(65536)
                if not b:
                    break
                body += b
            s.close()
            with open(final, "rb") as f:
                f.seek(lo)
                want = f.read(hi - lo + 1)
            check(head.startswith("HTTP/1.1 206") and
                  ("content-range: bytes %d-%d/%d" % (lo, hi, size)) in head.lower(),
                  "range %d-%d of %d answers:\n%s" % (lo, hi, size, head))
            check(body == want, "bytes %d-%d differ from the file" % (lo, hi))
        return ent
    finally:
        rc = srv.stop()
        check(rc == 0, "serve exits 0 (got %r)" % rc)


rec = os.path.join(TMP, "rec")
os.makedirs(rec)
RATE, CH = 48000, 2
src = os.path.join(TMP, "noise.raw")
open(src, "wb").write(os.urandom(RATE * CH * 2 * 20))     # 20 s of S16 stereo noise
small = os.path.join(TMP, "small.flac")
part = killed_take(small, src, ["--format", "S16_LE", "--rate", str(RATE), "--channels",
                                str(CH), "--realtime"], 256 * 1024, 60)
data = open(part, "rb").read()
blocks, audio_start = flac_blocks(data)
pad_len = (1 << 24) - 1                                    # the largest metadata block
n_pad = 4 * GIB // pad_len + 1
moved = os.path.join(rec, "moved.flac.part")
with open(moved, "wb") as f:
    f.write(b"fLaC")
    for typ, off, length in blocks:                        # "last block" flag cleared
        f.write(bytes([typ]) + data[off + 1:off + 4 + length])
    for i in range(n_pad):                                 # PADDING: zeros, left sparse
        f.write(bytes([1 | (0x80 if i == n_pad - 1 else 0)]) + pad_len.to_bytes(3, "big"))
        f.seek(pad_len, os.SEEK_CUR)
    frames_at = f.tell()
    f.write(data[audio_start:])                            # the frames, torn end included
check(frames_at > 4 * GIB, "the frames start at %d" % frames_at)
ent = check_served(rec, moved[:-len(".part")], RATE, CH, 2)
final = moved[:-len(".part")]
t = subprocess.run(["flac", "-t", "-s", final], capture_output=True, text=True, timeout=600)
check(t.returncode == 0, "flac -t fails on the repaired take: %s" % t.stderr[-500:])
samples = int(subprocess.run(["metaflac", "--show-total-samples", final], capture_output=True,
                             text=True).stdout.strip() or 0)
check(samples > 0 and abs(ent["seconds"] - samples / RATE) < 0.01,
      "listed %.3f s, STREAMINFO says %d samples" % (ent["seconds"], samples))
print("killed take moved past 4 GiB (frames at %d): finalized, %d samples, listed, served"
      % (frames_at, samples))
os.unlink(final)

# --- 4. opt-in: the writer itself past 4 GiB ---------------------------------------------
if os.environ.get("PIREC_LARGE_TAKE") != "1":
    print("ok (PIREC_LARGE_TAKE=1 also writes a real take past 4 GiB)")
    sys.exit(0)
if shutil.disk_usage(TMP).free < 10 * GIB:
    skip("PIREC_LARGE_TAKE=1 needs 10 GB free in %s" % TMP)
RATE, CH, W = 192000, 8, 3
big_src = os.path.join(TMP, "noise_big.raw")
chunk = os.urandom(64 * MIB // (CH * W) * (CH * W))
with open(big_src, "wb") as f:                             # FLAC cannot compress noise
    while f.tell() < 4 * GIB + 512 * MIB:
        f.write(chunk)
t0 = time.monotonic()
part = killed_take(os.path.join(rec, "big.flac"), big_src,
                   ["--format", "S24_3LE", "--rate", str(RATE), "--channels", str(CH),
                    "--bits", "24", "--compression", "1"], 4 * GIB + 64 * MIB, 3600)
took = time.monotonic() - t0
os.unlink(big_src)
r = run("repair", part, timeout=3600)
check(r.returncode == 0, "pirec repair of the 4 GiB take: %s %s" % (r.stdout, r.stderr))
final = part[:-len(".part")]
check_served(rec, final, RATE, CH, W)
t = subprocess.run(["flac", "-t", "-s", final], capture_output=True, text=True, timeout=3600)
check(t.returncode == 0, "flac -t fails on the 4 GiB take: %s" % t.stderr[-500:])
print("ok: the writer wrote %d bytes in %.0f s (reported, not asserted), repaired, served"
      % (os.path.getsize(final), took))
