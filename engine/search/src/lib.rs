//! Evidence and talk-track search: every e-mail and transcript utterance,
//! masked, in a tantivy index that analyses text exactly as the phrase
//! matcher does; value-confirming answers paired with the rep line before
//! them as reusable talk tracks, with their win rates once outcomes are
//! known.
//!
//! - [`mask`]: personal data out of text (pure);
//! - [`evidence`]: which documents an applied event makes (pure);
//! - [`tokenizer`]: the core analyzer as a tantivy tokenizer;
//! - [`index`]: the index on disk, writing and searching.

pub mod evidence;
pub mod index;
pub mod mask;
pub mod tokenizer;

pub use evidence::{EvidenceBuilder, EvidenceDoc};
pub use index::{
    EvidenceIndex, EvidenceWriter, IndexStats, SearchError, SearchHit, SearchRequest, SearchResults,
};

use intent_core::event::Event;
use intent_core::extract::Observation;
use intent_core::signal_defs::SignalSet;

/// Feeds applied events into an index: builds their documents and adds
/// them to the writer. Committing is up to the owner.
pub struct EvidenceSink {
    pub builder: EvidenceBuilder,
    pub writer: EvidenceWriter,
    docs: Vec<EvidenceDoc>,
    /// Documents added in all.
    pub added: u64,
    /// The first error, after which the sink stops adding (the engine
    /// itself goes on).
    pub error: Option<SearchError>,
}

impl EvidenceSink {
    pub fn new(builder: EvidenceBuilder, writer: EvidenceWriter) -> EvidenceSink {
        EvidenceSink {
            builder,
            writer,
            docs: Vec::new(),
            added: 0,
            error: None,
        }
    }

    pub fn observe(&mut self, defs: &SignalSet, event: &Event<'_>, obs: &Observation) {
        if self.error.is_some() {
            return;
        }
        self.docs.clear();
        self.builder.observe(defs, event, obs, &mut self.docs);
        for doc in &self.docs {
            if let Err(e) = self.writer.add(doc) {
                self.error = Some(e);
                return;
            }
            self.added += 1;
        }
    }

    /// Adds documents that did not come from events (outcomes read from a file).
    pub fn add(&mut self, doc: &EvidenceDoc) -> Result<(), SearchError> {
        self.writer.add(doc)?;
        self.added += 1;
        Ok(())
    }
}
