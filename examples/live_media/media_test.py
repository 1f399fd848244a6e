#!/usr/bin/env python3
"""live_media's tests with real ffmpeg: a live ffmpeg encoder feeds the server, real ffmpeg
clients and raw HTTP captures join at staggered times, ffprobe checks what each received.

    media_test.py LIVE_MEDIA join      # late joiners decode from their first byte (aligned)
    media_test.py LIVE_MEDIA no_align  # the same joins without alignment do NOT (the control)
    media_test.py LIVE_MEDIA resume    # ?from= at X-Position + bytes received continues gaplessly
    media_test.py LIVE_MEDIA bad_input # malformed input: a clear error, exit 1 (no ffmpeg needed)
    media_test.py LIVE_MEDIA browser CHROMIUM  # headless chromium plays the page's video

A key frame every 2 s (-g 50 at 25 fps), a fragment every 200 ms: most fragments start mid-GOP.
Python 3 standard library; ffmpeg and ffprobe on PATH. Exit 0 on success.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

FEED_SECONDS = 14


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def start(server, *args):
    enc = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
         "-t", str(FEED_SECONDS), "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-f", "mp4",
         "-movflags", "empty_moov+default_base_moof+frag_keyframe", "-frag_duration", "200000", "pipe:1"],
        stdout=subprocess.PIPE)
    srv = subprocess.Popen([server, "--port", "0", *args], stdin=enc.stdout, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    enc.stdout.close()
    line = srv.stdout.readline()
    if not line.startswith("listening "):
        fail("the server did not start: " + line + srv.stderr.read())
    port = int(line.split()[1])
    # The video is there once /live.mp4 is not 503 (no header yet).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, _ = capture(port, "/live.mp4", 0.1)
        if status == 200:
            break
        time.sleep(0.1)
    else:
        fail("no video after 20 s")
    return enc, srv, port


def stop(enc, srv):
    enc.wait(timeout=FEED_SECONDS + 30)
    try:
        _, err = srv.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        srv.kill()
        fail("the server did not exit after the feed ended")
    if srv.returncode != 0:
        fail(f"the server exited {srv.returncode}: {err}")
    return err


def parse_chunks(data):
    """The whole HTTP chunks at the start of a chunked body: (chunks, the bytes after them, whether
    the last chunk (size 0) was among them)."""
    chunks = []
    while True:
        eol = data.find(b"\r\n")
        if eol < 0:
            return chunks, data, False
        size = int(data[:eol], 16)
        if size == 0:
            return chunks, b"", True
        if len(data) < eol + 2 + size + 2:
            return chunks, data, False
        chunks.append(data[eol + 2:eol + 2 + size])
        data = data[eol + 2 + size + 2:]


def capture(port, target, seconds):
    """GET target; reads the chunked body for `seconds` (or to its end). Returns the status, the
    X-Position header (or None) and the list of HTTP chunks received whole."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    end = time.monotonic() + seconds
    while b"\r\n\r\n" not in data:
        got = s.recv(65536)
        if not got:
            return 0, None, []
        data += got
    head, data = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    pos = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "x-position":
            pos = int(v.strip())
    chunks = []
    if status != 200 or not target.startswith("/live.mp4"):
        s.close()
        return status, pos, chunks
    while time.monotonic() < end:
        whole, data, ended = parse_chunks(data)
        chunks += whole
        if ended:
            s.close()
            return status, pos, chunks
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            got = s.recv(65536)
        except socket.timeout:
            break
        if not got:
            break
        data += got
    s.close()
    return status, pos, chunks


def probe(path):
    """(first video packet's flags, frames decoded, packets read, ffmpeg -v error output)."""
    flags = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=flags",
                            "-of", "csv=p=0", path], capture_output=True, text=True).stdout.split()
    counts = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-count_frames", "-count_packets",
                             "-show_entries", "stream=nb_read_frames,nb_read_packets", "-of", "csv=p=0", path],
                            capture_output=True, text=True).stdout.strip().split(",")
    errors = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"], capture_output=True,
                            text=True).stderr
    frames, packets = (int(c) for c in counts) if len(counts) == 2 and all(c.isdigit() for c in counts) else (0, 0)
    return (flags[0] if flags else ""), frames, packets, errors


def joins(port, tmp, offsets, seconds=3):
    """Raw captures joining at `offsets` seconds from now, in parallel; the files they wrote."""
    results = {}

    def one(i, at):
        time.sleep(at)
        status, _, chunks = capture(port, "/live.mp4", seconds)
        path = os.path.join(tmp, f"join{i}.mp4")
        with open(path, "wb") as f:
            f.write(b"".join(chunks))
        results[i] = (status, path, len(chunks))

    threads = [threading.Thread(target=one, args=(i, at)) for i, at in enumerate(offsets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[i] for i in range(len(offsets))]


# Six joins 0.4 s apart span a whole 2 s GOP: one lands right after a key frame, one just before.
OFFSETS = [0.0, 0.4, 0.8, 1.2, 1.6, 2.0]


def test_join(server):
    enc, srv, port = start(server)
    with tempfile.TemporaryDirectory() as tmp:
        ffmpeg_clients = []

        def ffmpeg_client(at):
            time.sleep(at)
            r = subprocess.run(["ffmpeg", "-v", "error", "-i", f"http://127.0.0.1:{port}/live.mp4", "-t", "3",
                                "-f", "null", "-"], capture_output=True, text=True)
            ffmpeg_clients.append((at, r.returncode, r.stderr))

        threads = [threading.Thread(target=ffmpeg_client, args=(at + 0.2,)) for at in OFFSETS[:5]]
        for t in threads:
            t.start()
        captured = joins(port, tmp, OFFSETS)
        for t in threads:
            t.join()
        for at, rc, err in ffmpeg_clients:
            print(f"ffmpeg client joining at +{at:.1f}s: exit {rc}, stderr {err!r}")
            if rc != 0 or err:
                fail("an ffmpeg client did not decode cleanly")
        for (status, path, n), at in zip(captured, OFFSETS):
            first, frames, packets, errors = probe(path)
            print(f"capture joining at +{at:.1f}s: {n} HTTP chunks, first packet {first!r}, "
                  f"{frames} frames / {packets} packets, errors {errors!r}")
            if status != 200 or n < 2:
                fail("a capture got too little")
            if not first.startswith("K") or frames != packets or frames == 0 or errors:
                fail("a late joiner's capture does not decode from its first byte")
    stop(enc, srv)


def test_no_align(server):
    enc, srv, port = start(server, "--no-align")
    with tempfile.TemporaryDirectory() as tmp:
        captured = joins(port, tmp, OFFSETS[1:])  # five joins within 1.6 s: at most one at a key frame
        bad = 0
        for status, path, n in captured:
            first, frames, packets, errors = probe(path)
            print(f"unaligned capture: {n} HTTP chunks, first packet {first!r}, {frames} frames / {packets} packets")
            if status == 200 and (not first.startswith("K") or frames != packets):
                bad += 1
        if bad < 3:
            fail(f"without alignment only {bad} of 5 late joiners failed the check: the check proves nothing")
    stop(enc, srv)


def test_resume(server):
    enc, srv, port = start(server)
    reference = {}

    def whole():  # from position 0 to the end: every media byte of the feed
        reference["r"] = capture(port, "/live.mp4?from=0", FEED_SECONDS + 20)

    t = threading.Thread(target=whole)
    t.start()
    time.sleep(2)
    status_a, pos_a, chunks_a = capture(port, "/live.mp4", 1.5)
    if status_a != 200 or pos_a is None or len(chunks_a) < 2:
        fail(f"first response: {status_a} {pos_a} {len(chunks_a)} chunks")
    media_a = b"".join(chunks_a[1:])  # the first HTTP chunk is the header
    resume_at = pos_a + len(media_a)
    status_b, pos_b, chunks_b = capture(port, f"/live.mp4?from={resume_at}", 1.5)
    if status_b != 200 or pos_b != resume_at:
        fail(f"resumed response: status {status_b}, X-Position {pos_b}, expected {resume_at}")
    media_b = b"".join(chunks_b)  # a resumed response has no header
    status_ahead, _, _ = capture(port, f"/live.mp4?from={10**12}", 1)
    if status_ahead != 416:
        fail(f"a position ahead of the feed got {status_ahead}, not 416")
    t.join()
    status_r, pos_r, chunks_r = reference["r"]
    media_r = b"".join(chunks_r)  # resumed from 0: no header
    if status_r != 200 or pos_r != 0:
        fail(f"reference response: {status_r} {pos_r}")
    joined = media_a + media_b
    print(f"A: X-Position {pos_a}, {len(media_a)} bytes; B: X-Position {pos_b}, {len(media_b)} bytes; "
          f"reference {len(media_r)} bytes")
    if not media_b or media_r[pos_a:pos_a + len(joined)] != joined:
        fail("A + B is not the feed's bytes from A's X-Position")
    stop(enc, srv)


def test_browser(server, chromium):
    """Headless chromium plays the live video: the page (served by this script, the video from
    the server) reports currentTime twice, 2 s apart, to this script."""
    import http.server
    enc, srv, port = start(server)
    reports = []
    page = f"""<!doctype html><html><body><video id="v" src="http://127.0.0.1:{port}/live.mp4" autoplay muted></video>
<script>
const v = document.getElementById('v');
const report = (what) => fetch('/report?' + what, {{method: 'POST'}});
report('canPlayType=' + v.canPlayType('video/mp4; codecs="avc1.42E01E"'));
v.addEventListener('error', () => report('error=' + (v.error ? v.error.code : '?')));
v.play().catch((e) => report("play=" + e.name)); // as the server's own page does
setTimeout(() => {{ const t1 = v.currentTime; setTimeout(() => report('t1=' + t1 + '&t2=' + v.currentTime + '&rs=' + v.readyState + '&ns=' + v.networkState + '&paused=' + v.paused + '&buffered=' + (v.buffered.length ? v.buffered.end(0) : -1)), 2000); }}, 2500);
</script></body></html>""".encode()

    class handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def do_POST(self):
            reports.append(self.path.partition("?")[2])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    # Chromium's helper processes may still write to the profile after the browser is gone.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                    "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}",
                                    f"http://127.0.0.1:{httpd.server_address[1]}/"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(r.startswith("t1=") or r.startswith("error=") for r in reports):
            time.sleep(0.1)
        try:
            os.killpg(browser.pid, signal.SIGKILL)  # the browser and every helper process it started
        except ProcessLookupError:
            pass
        browser.wait()
        time.sleep(0.5)
    httpd.shutdown()
    print("the page reported:", reports)
    played = [r for r in reports if r.startswith("t1=")]
    if "canPlayType=probably" not in reports and "canPlayType=maybe" not in reports:
        fail("this chromium cannot play H.264 in MP4")
    if not played:
        fail("the video did not report its time (an error, or no playback)")
    times = dict(kv.split("=") for kv in played[0].split("&"))
    if not float(times["t2"]) > float(times["t1"]) + 1.0:
        fail("currentTime did not advance while the page played")
    stop(enc, srv)


def test_lagging(server):
    """A viewer whose socket is paused falls behind (drop_oldest); once it reads again it goes on at
    the next key frame: what it received still decodes from start to end."""
    enc, srv, port = start(server, "--queue-limit", "65536", "--send-buffer", "16384")
    with tempfile.TemporaryDirectory() as tmp:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /live.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(6)  # paused: the feed goes on
        data = b""
        s.settimeout(0.5)
        end = time.monotonic() + 4
        while time.monotonic() < end:
            try:
                got = s.recv(65536)
            except socket.timeout:
                continue
            if not got:
                break
            data += got
        s.close()
        chunks, _, _ = parse_chunks(data.partition(b"\r\n\r\n")[2])
        path = os.path.join(tmp, "lagging.mp4")
        with open(path, "wb") as f:
            f.write(b"".join(chunks))
        first, frames, packets, errors = probe(path)
        print(f"paused viewer: {len(chunks)} HTTP chunks, first packet {first!r}, {frames} frames / {packets} packets, "
              f"errors {errors!r}")
        err = stop(enc, srv)
        if "fell behind" not in err:
            fail("the paused viewer never fell behind: the test proves nothing\n" + err)
        if not first.startswith("K") or frames != packets or frames == 0 or errors:
            fail("after falling behind the viewer's bytes do not decode")


def box(kind, body):
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def test_bad_input(server):
    """Malformed input is a clear error and exit 1, never a crash or a hang; no input is a clean end."""
    ftyp = box(b"ftyp", b"isom\0\0\2\0")
    moov = box(b"moov", b"")
    cases = [
        (b"garbage!", "box of"),                                   # a huge size
        (b"\0\0\0\4abcd", "smaller than its header"),
        (ftyp + moov + box(b"moof", b"")[:6], "ends inside a box"),  # truncated
        (ftyp + box(b"moof", b""), "before the moov"),
        (ftyp + moov + box(b"mdat", b"x"), "mdat without its moof"),
        (ftyp + moov + box(b"moof", box(b"traf", box(b"trun", b"\0\0\0\4"))), "too short"),  # trun cut short
        (b"\0\0\0\0free", "extends to the end"),
    ]
    for data, expected in cases:
        r = subprocess.run([server, "--port", "0"], input=data, capture_output=True, timeout=20)
        err = r.stderr.decode()
        print(f"{data[:16]!r}...: exit {r.returncode}, {err.strip()!r}")
        if r.returncode != 1 or expected not in err:
            fail(f"expected exit 1 and {expected!r}")
    r = subprocess.run([server, "--port", "0"], input=b"", capture_output=True, timeout=20)
    if r.returncode != 0:
        fail(f"an empty input exited {r.returncode}")


if __name__ == "__main__":
    server, which = sys.argv[1], sys.argv[2]
    if which == "browser":
        test_browser(server, sys.argv[3])
    else:
        {"join": test_join, "no_align": test_no_align, "resume": test_resume, "bad_input": test_bad_input,
         "lagging": test_lagging}[which](server)
    print("PASS")
