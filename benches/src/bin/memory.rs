//! Memory probe: replays a JSON-lines stream from stdin through the pipeline
//! and reports resident memory per account, with the bytes the allocator
//! holds live for comparison, and the heap allocations the pipeline makes
//! per event (reading, decoding, processing; the allocator counts every
//! `alloc` and `realloc`). `--signals DIR` replays under other definitions
//! (e.g. `benches/peer-job/signal-defs`).
//!
//! ```sh
//! cargo build --release -p intent-cli -p benches
//! target/release/intent synth --events 6000000 --accounts 1000000 --zipf 0 --intent-share 0.15 \
//!   | target/release/memory
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::io::BufReader;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};

use benches::{rss_bytes, shipped_defs};
use intent_core::{Pipeline, PipelineConfig};
use intent_files::replay::replay_reader;

/// The same allocator as the `intent` binary, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Allocations and reallocations made.
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to mimalloc unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let defs = match (args.next().as_deref(), args.next()) {
        (Some("--signals"), Some(dir)) => std::sync::Arc::new(
            intent_files::load_dir(std::path::Path::new(&dir))
                .unwrap_or_else(|e| panic!("{dir}: {e}")),
        ),
        (None, _) => shipped_defs(),
        _ => panic!("usage: memory [--signals DIR] < events.jsonl"),
    };
    let config = PipelineConfig {
        // Ids are remembered for idempotency; that memory is reported apart
        // (about 24 bytes per remembered id).
        dedupe_capacity: 1,
        ..PipelineConfig::default()
    };
    let mut pipeline = Pipeline::new(defs, config);
    let before = rss_bytes().unwrap_or(0);
    let live_before = LIVE.load(Ordering::Relaxed);
    let allocs_before = ALLOCS.load(Ordering::Relaxed);
    let stdin = std::io::stdin();
    let mut n_actions = 0usize;
    let n_events = replay_reader(
        &mut pipeline,
        "stdin",
        BufReader::with_capacity(1 << 16, stdin.lock()),
        |actions| n_actions += actions.len(),
        |rejected| eprintln!("rejected line {}: {}", rejected.line, rejected.error),
        |_| {},
    )
    .expect("reading stdin");
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs_before;
    let mut out = Vec::new();
    pipeline.finish(&mut out);
    drop(out);
    // Freed transient memory goes back to the OS first, so what is left is
    // what the pipeline holds.
    // SAFETY: mi_collect only walks mimalloc's own heaps; no pointer is passed.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let after = rss_bytes().unwrap_or(0);
    let live = LIVE.load(Ordering::Relaxed) - live_before;
    let accounts = pipeline.graph().len();
    let (mut contacts, mut signals, mut topics) = (0usize, 0usize, 0usize);
    for entry in pipeline.graph().entries() {
        contacts += entry.core.contacts.len();
        signals += entry.core.signals.len();
        topics += entry.core.topics.len();
    }
    let per = |x: f64| x / accounts.max(1) as f64;
    println!("{n_events} events, {n_actions} actions, {accounts} accounts");
    println!(
        "heap allocations: {allocs} = {:.2} per event",
        allocs as f64 / n_events.max(1) as f64
    );
    println!(
        "per account: {:.1} contacts, {:.1} signals, {:.1} topics",
        per(contacts as f64),
        per(signals as f64),
        per(topics as f64)
    );
    println!(
        "resident growth: {:.1} MiB = {:.0} bytes/account; allocated and live: {:.0} bytes/account; graph estimate: {:.0} bytes/account",
        (after - before) as f64 / (1024.0 * 1024.0),
        per((after - before) as f64),
        per(live as f64),
        per(pipeline.heap_bytes() as f64),
    );
}
