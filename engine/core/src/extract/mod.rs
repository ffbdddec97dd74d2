//! Keyword extraction: from a validated event to an [`Observation`], the
//! owned, compact record of what the event says about its account (which
//! signals it is an occurrence of, which phrases matched, which open topics it
//! raises, what it says about the contact).

pub mod analyzer;
pub mod features;
pub mod keywords;
pub mod matcher;
mod stopwords;

pub use analyzer::{Analyzed, Analyzer, View};
pub use features::{ContactObs, CrmObs, Extractor, LibraryHit, Observation, SignalHit, TopicObs};
pub use keywords::{DocFreq, TopicName};
pub use matcher::{PhraseHit, PhraseMatcher};
