//! Memory probe: builds the intent graph of many accounts with typical state
//! (a few contacts, signals and topics each) and reports resident memory per
//! account. `cargo run --release -p benches --bin memory -- 1000000`

use benches::{rss_bytes, shipped_defs, stream};
use engine::synth::SynthConfig;
use engine::{Pipeline, PipelineConfig};

/// The same allocator as the `intent` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n_accounts: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let events_per_account = 6;
    let defs = shipped_defs();
    let config = PipelineConfig {
        // Ids are remembered for idempotency; that memory is reported apart.
        dedupe_capacity: 1,
        ..PipelineConfig::default()
    };
    let mut pipeline = Pipeline::new(defs, config);
    let mut out = Vec::new();
    let before = rss_bytes().unwrap_or(0);
    // Stream in chunks so the input itself never sits in memory; every account
    // gets `events_per_account` events (uniform popularity).
    let chunk = 200_000;
    let total = n_accounts * events_per_account;
    let mut done = 0;
    let mut seed = 1;
    while done < total {
        let n = chunk.min(total - done);
        let lines = stream(&SynthConfig {
            seed,
            n_events: n,
            n_accounts,
            zipf: 0.0001,
            intent_share: 0.15,
            start: engine::Timestamp(1_767_225_600_000 + done as i64 * 10),
            step_ms: 10,
            ..SynthConfig::default()
        });
        for line in &lines {
            let _ = pipeline.process_bytes(line, &mut out);
        }
        out.clear();
        done += n;
        seed += 1;
    }
    pipeline.finish(&mut out);
    out.clear();
    out.shrink_to_fit();
    // Freed transient memory (observations, checkpoints) goes back to the OS
    // first, so what is left is what the graph holds.
    // SAFETY: mi_collect only walks mimalloc's own heaps; no pointer is passed.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let after = rss_bytes().unwrap_or(0);
    let accounts = pipeline.graph().len();
    let (mut contacts, mut signals, mut topics) = (0usize, 0usize, 0usize);
    for entry in pipeline.graph().entries() {
        contacts += entry.core.contacts.len();
        signals += entry.core.signals.len();
        topics += entry.core.topics.len();
    }
    println!(
        "accounts: {accounts} ({events_per_account} events each on average, {} events)",
        pipeline.stats().applied
    );
    println!(
        "per account: {:.1} contacts, {:.1} signals, {:.1} topics",
        contacts as f64 / accounts as f64,
        signals as f64 / accounts as f64,
        topics as f64 / accounts as f64
    );
    println!(
        "resident: {:.1} MiB growth, {:.0} bytes/account (heap estimate {:.0} bytes/account)",
        (after - before) as f64 / (1024.0 * 1024.0),
        (after - before) as f64 / accounts as f64,
        pipeline.heap_bytes() as f64 / accounts as f64
    );
}
