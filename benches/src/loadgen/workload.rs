//! The load: a synthetic stream (Zipf accounts, a mix of kinds, real text,
//! a share of events built to carry intent) re-stamped for one run — event
//! ids and accounts carry a run id, event time follows the send schedule —
//! and the actions the engine must answer with, computed by running the
//! same pure pipeline in-process.

use std::sync::Arc;

use bytes::Bytes;
use intent_analyst::synth::{self, Corpus, SynthConfig};
use intent_core::{Pipeline, PipelineConfig, SignalSet};
use intent_serve::subjects::Subjects;

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// The synthetic stream: seed, size, accounts, mix, intent share, and
    /// `start` = the run's wall-clock start (its `step_ms` is replaced by
    /// the schedule's).
    pub synth: SynthConfig,
    /// Events per second: event time advances with the schedule.
    pub rate: f64,
    /// Tag in every id and account, so runs against one engine do not
    /// collide (the engine de-duplicates event ids).
    pub run_id: String,
    pub lateness_ms: i64,
}

/// One event, ready to publish.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub subject: String,
    pub id: String,
    pub payload: Bytes,
}

/// The stream and what it must produce.
pub struct Workload {
    pub events: Vec<Prepared>,
    /// Number of actions each event triggers (most trigger none).
    pub triggers: Vec<u8>,
    /// Actions with a triggering event in the whole stream.
    pub expected_actions: u64,
    pub run_id: String,
}

/// The id of the i-th event of a run; [`event_index`] reads it back.
pub fn event_id(run_id: &str, i: usize) -> String {
    format!("lg{run_id}-{i}")
}

/// The index of an event from its id, if it belongs to the run.
pub fn event_index(run_id: &str, id: &str) -> Option<usize> {
    id.strip_prefix("lg")?
        .strip_prefix(run_id)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// Builds the stream and runs it through an in-process pipeline (the same
/// definitions and lateness as the engine) to know which events trigger
/// actions.
pub fn build(
    config: &WorkloadConfig,
    corpus: &Corpus,
    defs: Arc<SignalSet>,
    subjects: &Subjects,
) -> Workload {
    let step_ms = (1000.0 / config.rate.max(1e-3)).max(0.0);
    let start = config.synth.start;
    let mut events = Vec::with_capacity(config.synth.n_events);
    let mut i = 0usize;
    synth::generate(&config.synth, corpus, |mut event| {
        let id = event_id(&config.run_id, i);
        let account = format!(
            "{}-{}",
            config.run_id,
            event["account"].as_str().unwrap_or("a")
        );
        event["id"] = id.clone().into();
        event["account"] = account.clone().into();
        event["ts"] = (start.millis() + (i as f64 * step_ms) as i64).into();
        if let Some(contact) = event.get_mut("contact") {
            if let Some(cid) = contact["id"].as_str() {
                contact["id"] = format!("{}-{cid}", config.run_id).into();
            }
        }
        let kind = event["kind"].as_str().unwrap_or("web").to_string();
        events.push(Prepared {
            subject: subjects.event(&kind, &account),
            id,
            payload: Bytes::from(event.to_string()),
        });
        i += 1;
    });
    let mut pipeline = Pipeline::new(
        defs,
        PipelineConfig {
            allowed_lateness_ms: config.lateness_ms,
            ..PipelineConfig::default()
        },
    );
    let mut triggers = vec![0u8; events.len()];
    let mut actions = Vec::new();
    let mut expected = 0;
    for event in &events {
        actions.clear();
        // Synthetic events are valid; a rejection would show as a missing action.
        let _ = pipeline.process_bytes(&event.payload, &mut actions);
        for action in &actions {
            if let Some(index) = action
                .trigger_event
                .as_deref()
                .and_then(|id| event_index(&config.run_id, id))
            {
                triggers[index] = triggers[index].saturating_add(1);
                expected += 1;
            }
        }
    }
    Workload {
        events,
        triggers,
        expected_actions: expected,
        run_id: config.run_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intent_core::time::Timestamp;

    #[test]
    fn ids_round_trip_and_foreign_ids_do_not_match() {
        assert_eq!(event_index("r7", &event_id("r7", 12345)), Some(12345));
        assert_eq!(event_index("r7", "lgr8-1"), None);
        assert_eq!(event_index("r7", "lgr7-x"), None);
        assert_eq!(event_index("r7", "syn-1-2"), None);
    }

    #[test]
    fn the_workload_is_deterministic_and_fires_rules() {
        let config = WorkloadConfig {
            synth: SynthConfig {
                seed: 3,
                n_events: 3_000,
                n_accounts: 200,
                zipf: 1.1,
                mix: [80, 15, 5],
                intent_share: 0.2,
                start: Timestamp(1_780_000_000_000),
                step_ms: 0,
            },
            rate: 1000.0,
            run_id: "t1".into(),
            lateness_ms: 600_000,
        };
        let subjects = Subjects::new("intent").unwrap();
        let a = build(&config, &crate::corpus(), crate::shipped_defs(), &subjects);
        let b = build(&config, &crate::corpus(), crate::shipped_defs(), &subjects);
        assert_eq!(a.triggers, b.triggers);
        assert!(a.expected_actions > 20, "{}", a.expected_actions);
        assert_eq!(
            a.expected_actions,
            a.triggers.iter().map(|&t| t as u64).sum::<u64>()
        );
        let first: serde_json::Value = serde_json::from_slice(&a.events[0].payload).unwrap();
        assert_eq!(first["id"], "lgt1-0");
        assert!(first["account"].as_str().unwrap().starts_with("t1-"));
        assert!(a.events[0].subject.starts_with("intent.events."));
        // Event time follows the schedule: 1 ms apart at 1,000/s.
        let tenth: serde_json::Value = serde_json::from_slice(&a.events[10].payload).unwrap();
        assert_eq!(
            tenth["ts"].as_i64().unwrap() - first["ts"].as_i64().unwrap(),
            10
        );
    }
}
