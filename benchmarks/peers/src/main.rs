// bytecast_peers: bytecast_throughput's workload on what a Rust user would pick instead, one
// configuration per process, one JSON line with bytecast_throughput's field names.
//
// One writer thread (this program's main thread, a plain std::thread) writes `--total-bytes`
// bytes in chunks of `--chunk` bytes, as fast as it can; chunk i starts with the byte i % 251 and
// is one `Bytes::copy_from_slice` of a pre-made source buffer (one copy per write, shared by every
// reader through its reference count). `--readers` tasks on a tokio multi-thread runtime with
// `--threads` worker threads (2 by default) read every chunk, check its first byte and size, and
// count bytes. The clock runs from the first write until the last reader saw the end.
//
// --impl tokio_broadcast  one tokio::sync::broadcast::channel::<Bytes>, capacity >= the chunk
//                         count (rounded up to a power of two), so no reader can lag: a Lagged
//                         error aborts. The end: the Sender is dropped, readers stop on Closed.
// --impl seed_mpsc        the seed's design (stream_utils' ByteWriter / ByteStream): one
//                         tokio::sync::mpsc::unbounded_channel::<Bytes> per reader, the writer
//                         sends a clone of the same Bytes to each. The end: an empty Bytes
//                         sentinel, then the senders are dropped.
//
// --loop plain            rx.recv().await per chunk
// --loop drain            try_recv until empty, then one recv().await
//
// Any mismatch (wrong first byte, wrong size, chunk or byte count, a lag) aborts with a message.
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc};

fn fail(what: &str) -> ! {
    eprintln!("bytecast_peers: {what}");
    std::process::abort();
}

fn usage(what: &str) -> ! {
    eprintln!(
        "bytecast_peers: {what}\n\
         usage: bytecast_peers [--impl tokio_broadcast|seed_mpsc] [--loop plain|drain]\n\
         \x20        [--chunk BYTES] [--readers N] [--total-bytes BYTES] [--threads N] [--sample-bytes BYTES]\n\
         \x20 sizes take an optional binary suffix: K, M, G (64K = 65536)"
    );
    std::process::exit(2);
}

fn parse_size(flag: &str, text: &str) -> u64 {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let value: u64 = match text[..digits].parse() {
        Ok(v) => v,
        Err(_) => usage(&format!("{flag}: not a number: {text}")),
    };
    match &text[digits..] {
        "" | "B" => value,
        "K" | "k" | "KiB" => value << 10,
        "M" | "m" | "MiB" => value << 20,
        "G" | "g" | "GiB" => value << 30,
        _ => usage(&format!("{flag}: unknown suffix: {text}")),
    }
}

struct Options {
    imp: String,
    lp: String,
    chunk: u64,
    readers: u64,
    total_bytes: u64,
    threads: u64,
    sample_bytes: u64, // how often the writer samples the readers' lag
}

fn parse() -> Options {
    let mut o = Options {
        imp: "tokio_broadcast".into(),
        lp: "plain".into(),
        chunk: 64,
        readers: 1,
        total_bytes: 64 << 20,
        threads: 2,
        sample_bytes: 64 << 10,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--help" || flag == "-h" {
            usage("help");
        }
        let value = match args.get(i + 1) {
            Some(v) => v.as_str(),
            None => usage(&format!("{flag} needs a value")),
        };
        match flag {
            "--impl" => o.imp = value.into(),
            "--loop" => o.lp = value.into(),
            "--chunk" => o.chunk = parse_size(flag, value),
            "--readers" => o.readers = parse_size(flag, value),
            "--total-bytes" => o.total_bytes = parse_size(flag, value),
            "--threads" => o.threads = parse_size(flag, value),
            "--sample-bytes" => o.sample_bytes = parse_size(flag, value),
            _ => usage(&format!("unknown option {flag}")),
        }
        i += 2;
    }
    if o.imp != "tokio_broadcast" && o.imp != "seed_mpsc" {
        usage("--impl must be tokio_broadcast or seed_mpsc");
    }
    if o.lp != "plain" && o.lp != "drain" {
        usage("--loop must be plain or drain");
    }
    if o.chunk == 0 {
        usage("--chunk must be at least 1");
    }
    if o.total_bytes < o.chunk || o.total_bytes % o.chunk != 0 {
        usage("--total-bytes must be a non-zero multiple of --chunk");
    }
    if o.readers == 0 {
        usage("--readers must be at least 1");
    }
    if o.threads == 0 {
        usage("--threads must be at least 1");
    }
    o
}

// --- process measurements (Linux /proc; 0 where it is missing) ---------------------------------

fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field) {
            let kib = rest.trim().trim_end_matches("kB").trim();
            return kib.parse::<u64>().unwrap_or(0) * 1024;
        }
    }
    0
}

fn load_average_1min() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(-1.0)
}

// --- shared run state ----------------------------------------------------------------------------

// One per reader, on its own cache line: the writer samples `chunks` now and then to know the
// backlog; only the reader stores to it.
#[repr(align(64))]
#[derive(Default)]
struct ReaderStats {
    chunks: AtomicU64,
}

struct RunState {
    chunk: u64,
    base: Instant, // end_ns counts from here
    stats: Vec<ReaderStats>,
    ready: AtomicU64,     // readers that reached their first wait
    remaining: AtomicU64, // readers that have not seen the end yet
    end_ns: AtomicU64,    // when the last reader saw the end, in ns since base
}

// What every reader does with one chunk: check, count, publish progress.
struct ChunkChecker {
    expected_size: usize,
    count: u64,
    bytes: u64,
    mark: u8, // count % 251, kept without a division per chunk
}

impl ChunkChecker {
    // Made by a reader as it starts, just before its first wait: counts it as ready.
    fn new(rs: &RunState) -> Self {
        rs.ready.fetch_add(1, Ordering::Release);
        ChunkChecker { expected_size: rs.chunk as usize, count: 0, bytes: 0, mark: 0 }
    }

    fn check(&mut self, b: &[u8], st: &ReaderStats) {
        if b.len() != self.expected_size {
            fail("a reader got a chunk of the wrong size");
        }
        if b[0] != self.mark {
            fail("a reader got a chunk with the wrong first byte (order or content)");
        }
        self.mark += 1;
        if self.mark == 251 {
            self.mark = 0;
        }
        self.bytes += b.len() as u64;
        self.count += 1;
        st.chunks.store(self.count, Ordering::Relaxed);
    }

    // The reader saw the end: the last one stops the clock. Returns (chunks, bytes).
    fn done(self, rs: &RunState) -> (u64, u64) {
        if rs.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            rs.end_ns.store(rs.base.elapsed().as_nanos() as u64, Ordering::Release);
        }
        (self.count, self.bytes)
    }
}

// The writer's view of the readers' backlog, sampled every `every` chunks.
struct LagSampler {
    every: u64,
    countdown: u64,
    peak_max_lag: u64, // chunks: the most any single reader was behind
    peak_sum_lag: u64, // queue entries: the sum over readers
}

impl LagSampler {
    fn new(every: u64) -> Self {
        LagSampler { every, countdown: every, peak_max_lag: 0, peak_sum_lag: 0 }
    }

    fn after_write(&mut self, rs: &RunState, written: u64) {
        self.countdown -= 1;
        if self.countdown != 0 {
            return;
        }
        self.countdown = self.every;
        let (mut max_lag, mut sum_lag) = (0, 0);
        for st in &rs.stats {
            let lag = written.saturating_sub(st.chunks.load(Ordering::Relaxed));
            max_lag = max_lag.max(lag);
            sum_lag += lag;
        }
        self.peak_max_lag = self.peak_max_lag.max(max_lag);
        self.peak_sum_lag = self.peak_sum_lag.max(sum_lag);
    }
}

// --- tokio::sync::broadcast ----------------------------------------------------------------------

async fn broadcast_plain_reader(mut rx: broadcast::Receiver<Bytes>, rs: Arc<RunState>, index: usize) -> (u64, u64) {
    let mut c = ChunkChecker::new(&rs);
    loop {
        match rx.recv().await {
            Ok(b) => c.check(&b, &rs.stats[index]),
            Err(broadcast::error::RecvError::Closed) => break,
            Err(broadcast::error::RecvError::Lagged(n)) => fail(&format!("a broadcast reader lagged by {n} chunks")),
        }
    }
    c.done(&rs)
}

async fn broadcast_drain_reader(mut rx: broadcast::Receiver<Bytes>, rs: Arc<RunState>, index: usize) -> (u64, u64) {
    use broadcast::error::{RecvError, TryRecvError};
    let mut c = ChunkChecker::new(&rs);
    loop {
        let b = match rx.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty) => match rx.recv().await {
                Ok(b) => b,
                Err(RecvError::Closed) => break,
                Err(RecvError::Lagged(n)) => fail(&format!("a broadcast reader lagged by {n} chunks")),
            },
            Err(TryRecvError::Closed) => break,
            Err(TryRecvError::Lagged(n)) => fail(&format!("a broadcast reader lagged by {n} chunks")),
        };
        c.check(&b, &rs.stats[index]);
    }
    c.done(&rs)
}

// --- the seed's design: one unbounded mpsc channel per reader ------------------------------------

async fn mpsc_plain_reader(mut rx: mpsc::UnboundedReceiver<Bytes>, rs: Arc<RunState>, index: usize) -> (u64, u64) {
    let mut c = ChunkChecker::new(&rs);
    loop {
        match rx.recv().await {
            Some(b) if b.is_empty() => break, // the writer's end sentinel
            Some(b) => c.check(&b, &rs.stats[index]),
            None => fail("a channel closed before its end sentinel"),
        }
    }
    c.done(&rs)
}

async fn mpsc_drain_reader(mut rx: mpsc::UnboundedReceiver<Bytes>, rs: Arc<RunState>, index: usize) -> (u64, u64) {
    use mpsc::error::TryRecvError;
    let mut c = ChunkChecker::new(&rs);
    loop {
        let b = match rx.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty) => match rx.recv().await {
                Some(b) => b,
                None => fail("a channel closed before its end sentinel"),
            },
            Err(TryRecvError::Disconnected) => fail("a channel closed before its end sentinel"),
        };
        if b.is_empty() {
            break;
        }
        c.check(&b, &rs.stats[index]);
    }
    c.done(&rs)
}

// --- the run -------------------------------------------------------------------------------------

#[derive(Default)]
struct RunResult {
    seconds: f64,
    writer_seconds: f64,
    delivered_bytes: u64,
    delivered_chunks: u64,
    peak_max_lag: u64,
    peak_sum_lag: u64,
    baseline_rss: u64,
    broadcast_capacity: u64,
}

// Everything the writer does with one chunk, and how it ends the run.
enum Fanout {
    Broadcast(broadcast::Sender<Bytes>),
    Mpsc(Vec<mpsc::UnboundedSender<Bytes>>),
}

impl Fanout {
    fn send(&self, b: Bytes) {
        match self {
            Fanout::Broadcast(tx) => {
                if tx.send(b).is_err() {
                    fail("broadcast send found no receiver");
                }
            }
            Fanout::Mpsc(txs) => {
                let (last, rest) = txs.split_last().expect("at least one reader");
                for tx in rest {
                    if tx.send(b.clone()).is_err() {
                        fail("a reader's channel closed early");
                    }
                }
                if last.send(b).is_err() {
                    fail("a reader's channel closed early");
                }
            }
        }
    }

    fn close(self) {
        if let Fanout::Mpsc(txs) = &self {
            for tx in txs {
                if tx.send(Bytes::new()).is_err() {
                    fail("a reader's channel closed early");
                }
            }
        }
        drop(self); // broadcast: dropping the only Sender closes the channel
    }
}

fn run(o: &Options) -> RunResult {
    let chunks = o.total_bytes / o.chunk;
    let rs = Arc::new(RunState {
        chunk: o.chunk,
        base: Instant::now(),
        stats: (0..o.readers).map(|_| ReaderStats::default()).collect(),
        ready: AtomicU64::new(0),
        remaining: AtomicU64::new(o.readers),
        end_ns: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads as usize)
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    let mut r = RunResult::default();
    let mut readers = Vec::new();
    let fanout = if o.imp == "tokio_broadcast" {
        let capacity = chunks.next_power_of_two(); // what broadcast::channel allocates
        r.broadcast_capacity = capacity;
        let (tx, _) = broadcast::channel::<Bytes>(capacity as usize);
        for i in 0..o.readers as usize {
            let (rx, rs) = (tx.subscribe(), rs.clone());
            readers.push(if o.lp == "plain" {
                rt.spawn(async move { broadcast_plain_reader(rx, rs, i).await })
            } else {
                rt.spawn(async move { broadcast_drain_reader(rx, rs, i).await })
            });
        }
        Fanout::Broadcast(tx)
    } else {
        let mut txs = Vec::new();
        for i in 0..o.readers as usize {
            let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
            txs.push(tx);
            let rs = rs.clone();
            readers.push(if o.lp == "plain" {
                rt.spawn(async move { mpsc_plain_reader(rx, rs, i).await })
            } else {
                rt.spawn(async move { mpsc_drain_reader(rx, rs, i).await })
            });
        }
        Fanout::Mpsc(txs)
    };
    while rs.ready.load(Ordering::Acquire) < o.readers {
        std::thread::yield_now();
    }

    let mut src = vec![0x5au8; o.chunk as usize];
    let mut lag = LagSampler::new((o.sample_bytes / o.chunk).max(1));
    r.baseline_rss = proc_status_bytes("VmRSS:");
    let t0 = rs.base.elapsed().as_nanos() as u64;
    let mut mark = 0u8;
    for i in 0..chunks {
        src[0] = mark;
        mark += 1;
        if mark == 251 {
            mark = 0;
        }
        fanout.send(Bytes::copy_from_slice(&src)); // the one copy of this write
        lag.after_write(&rs, i + 1);
    }
    fanout.close();
    let t_writer = rs.base.elapsed().as_nanos() as u64;

    let totals = rt.block_on(async {
        let mut totals = Vec::new();
        for h in readers {
            totals.push(h.await.unwrap_or_else(|e| fail(&format!("a reader failed: {e}"))));
        }
        totals
    });
    // Checks the readers' totals (this is also what keeps their work from being optimised away).
    for (count, bytes) in totals {
        if count != chunks {
            fail("a reader saw the end before the last chunk");
        }
        if bytes != o.total_bytes {
            fail("a reader counted the wrong number of bytes");
        }
        r.delivered_chunks += count;
        r.delivered_bytes += bytes;
    }
    r.seconds = (rs.end_ns.load(Ordering::Acquire) - t0) as f64 * 1e-9;
    r.writer_seconds = (t_writer - t0) as f64 * 1e-9;
    r.peak_max_lag = lag.peak_max_lag;
    r.peak_sum_lag = lag.peak_sum_lag;
    r
}

fn print_json(o: &Options, r: &RunResult, load: f64) {
    let chunks = o.total_bytes / o.chunk;
    let peak_rss = proc_status_bytes("VmHWM:");
    let mut s = format!(
        "{{\"impl\":\"{}\",\"loop\":\"{}\",\"chunk\":{},\"readers\":{},\"threads\":{},\"total_bytes\":{},\
         \"chunks\":{},\"seconds\":{:.6},\"chunks_per_s\":{:.0},\"bytes_per_s\":{:.0},\
         \"writer_seconds\":{:.6},\"writer_bytes_per_s\":{:.0},\"peak_rss_bytes\":{},\"baseline_rss_bytes\":{}",
        o.imp,
        o.lp,
        o.chunk,
        o.readers,
        o.threads,
        o.total_bytes,
        chunks,
        r.seconds,
        r.delivered_chunks as f64 / r.seconds,
        r.delivered_bytes as f64 / r.seconds,
        r.writer_seconds,
        o.total_bytes as f64 / r.writer_seconds,
        peak_rss,
        r.baseline_rss
    );
    // Chunks are shared: the payload bytes alive are those of the most-behind reader.
    let queued_bytes = r.peak_max_lag * o.chunk;
    let growth = peak_rss.saturating_sub(r.baseline_rss) as f64;
    s += &format!(
        ",\"peak_queued_bytes\":{},\"peak_queued_chunks\":{},\"peak_queue_entries\":{}",
        queued_bytes, r.peak_max_lag, r.peak_sum_lag
    );
    // Below 1 MiB queued, allocator slack and RSS accounting noise swamp the ratio.
    if queued_bytes >= 1 << 20 {
        s += &format!(
            ",\"rss_growth_per_queued_byte\":{:.3},\"rss_overhead_per_queued_chunk\":{:.1}",
            growth / queued_bytes as f64,
            (growth - queued_bytes as f64) / r.peak_max_lag as f64
        );
    } else {
        s += ",\"rss_growth_per_queued_byte\":null,\"rss_overhead_per_queued_chunk\":null";
    }
    if o.imp == "tokio_broadcast" {
        s += &format!(",\"broadcast_capacity\":{}", r.broadcast_capacity);
    }
    s += &format!(",\"load1\":{load:.2}}}");
    println!("{s}");
}

fn main() {
    let o = parse();
    let load = load_average_1min();
    let r = run(&o);
    print_json(&o, &r, load);
}
