//! The evidence and talk-track index on disk (tantivy): writing the
//! documents [`super::evidence`] builds, and searching them with relevance
//! ranking, filters and highlighted matches.
//!
//! One index holds three document types (`doc` field): `evidence`,
//! `snippet` and `outcome`. Text fields use the core's analyzer (registered
//! as [`super::tokenizer::NAME`]); the analyzer's settings are recorded in
//! `intent-index.json` beside the index, and an index is only opened with
//! the analyzer it was built with, so a query is always analysed like the
//! documents were.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value,
    STORED, STRING,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

use super::evidence::EvidenceDoc;
use super::tokenizer::{IntentTokenizer, NAME};
use intent_core::event::Kind;
use intent_core::extract::analyzer::Analyzer;
use intent_core::time::{parse_duration_ms, Timestamp};

/// The file beside the index that records how its text was analysed.
const META_FILE: &str = "intent-index.json";
const FORMAT: u32 = 1;
/// Characters of a highlighted fragment.
const FRAGMENT_CHARS: usize = 240;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// A file or directory of the index could not be read or written.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The record of the analyzer beside the index is not one.
    #[error("{}: {message}", path.display())]
    BadMeta { path: PathBuf, message: String },
    #[error("{path}: not an evidence index (no {META_FILE}) and not empty; refusing to use it")]
    NotAnIndex { path: PathBuf },
    #[error("{path}: built with analyzer {built}, but the definitions now use {now}; rebuild the index (intent index)")]
    AnalyzerChanged {
        path: PathBuf,
        built: String,
        now: String,
    },
    #[error("query: {0}")]
    Query(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    format: u32,
    language: String,
    prefix_fold: usize,
}

impl Meta {
    fn of(analyzer: &Analyzer) -> Meta {
        Meta {
            format: FORMAT,
            language: analyzer.language().to_string(),
            prefix_fold: analyzer.prefix_fold(),
        }
    }

    fn describe(&self) -> String {
        format!("{} (prefix fold {})", self.language, self.prefix_fold)
    }
}

#[derive(Clone, Copy)]
struct Fields {
    doc: Field,
    event_id: Field,
    account: Field,
    contact: Field,
    contact_title: Field,
    kind: Field,
    ts: Field,
    meeting: Field,
    signals: Field,
    keywords: Field,
    tags: Field,
    text: Field,
    rep_text: Field,
    track: Field,
    won: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let analysed = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(NAME)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        doc: b.add_text_field("doc", STRING | STORED),
        event_id: b.add_text_field("event_id", STRING | STORED),
        account: b.add_text_field("account", STRING | STORED),
        contact: b.add_text_field("contact", STRING | STORED),
        contact_title: b.add_text_field("contact_title", STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        ts: b.add_i64_field(
            "ts",
            NumericOptions::default()
                .set_indexed()
                .set_stored()
                .set_fast(),
        ),
        meeting: b.add_text_field("meeting", STRING | STORED),
        signals: b.add_text_field("signals", STRING | STORED),
        keywords: b.add_text_field("keywords", analysed.clone()),
        tags: b.add_text_field("tags", STRING | STORED),
        text: b.add_text_field("text", analysed.clone()),
        rep_text: b.add_text_field("rep_text", analysed),
        track: b.add_text_field("track", STRING | STORED),
        won: b.add_u64_field("won", STORED),
    };
    (b.build(), fields)
}

/// An evidence index on disk.
pub struct EvidenceIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    path: PathBuf,
}

/// Adds documents to an index; they become searchable at [`Self::commit`].
pub struct EvidenceWriter {
    writer: IndexWriter,
    fields: Fields,
    pending: u64,
}

impl EvidenceIndex {
    /// A new, empty index at `path`: created, or emptied when it already
    /// holds an evidence index. A non-empty directory that is not one is
    /// refused.
    pub fn create(path: &Path, analyzer: &Analyzer) -> Result<EvidenceIndex, SearchError> {
        let io = |source: std::io::Error| SearchError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() {
            let non_empty = std::fs::read_dir(path).map_err(io)?.next().is_some();
            if non_empty && !path.join(META_FILE).exists() {
                return Err(SearchError::NotAnIndex {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_dir_all(path).map_err(io)?;
        }
        std::fs::create_dir_all(path).map_err(io)?;
        let meta = Meta::of(analyzer);
        std::fs::write(
            path.join(META_FILE),
            serde_json::to_vec_pretty(&meta).expect("meta serialises"),
        )
        .map_err(io)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(path, schema)?;
        Self::ready(index, fields, path, analyzer)
    }

    /// An existing index, analysed with the analyzer recorded beside it.
    /// With `expected`, an index built with another analyzer is refused.
    pub fn open(path: &Path, expected: Option<&Analyzer>) -> Result<EvidenceIndex, SearchError> {
        let meta_path = path.join(META_FILE);
        let text = std::fs::read(&meta_path).map_err(|_| SearchError::NotAnIndex {
            path: path.to_path_buf(),
        })?;
        let meta: Meta = serde_json::from_slice(&text).map_err(|e| SearchError::BadMeta {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
        if let Some(expected) = expected {
            let now = Meta::of(expected);
            if now != meta {
                return Err(SearchError::AnalyzerChanged {
                    path: path.to_path_buf(),
                    built: meta.describe(),
                    now: now.describe(),
                });
            }
        }
        let analyzer = Analyzer::new(&meta.language, meta.prefix_fold).ok_or_else(|| {
            SearchError::BadMeta {
                path: meta_path.clone(),
                message: format!("unknown language '{}'", meta.language),
            }
        })?;
        let index = Index::open_in_dir(path)?;
        let (_, fields) = schema();
        Self::ready(index, fields, path, &analyzer)
    }

    fn ready(
        index: Index,
        fields: Fields,
        path: &Path,
        analyzer: &Analyzer,
    ) -> Result<EvidenceIndex, SearchError> {
        index
            .tokenizers()
            .register(NAME, IntentTokenizer::new(analyzer.clone()));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(EvidenceIndex {
            index,
            reader,
            fields,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A writer with `threads` indexing threads and `heap_bytes` of memory
    /// in all (at least 15 MB a thread).
    pub fn writer(&self, threads: usize, heap_bytes: usize) -> Result<EvidenceWriter, SearchError> {
        let threads = threads.max(1);
        let heap = heap_bytes.max(threads * 15_000_000);
        Ok(EvidenceWriter {
            writer: self.index.writer_with_num_threads(threads, heap)?,
            fields: self.fields,
            pending: 0,
        })
    }

    /// Makes committed documents visible to searches.
    pub fn refresh(&self) -> Result<(), SearchError> {
        Ok(self.reader.reload()?)
    }

    /// Documents by type, and the bytes the index takes on disk.
    pub fn stats(&self) -> Result<IndexStats, SearchError> {
        let searcher = self.reader.searcher();
        let count = |doc: &str| -> Result<u64, SearchError> {
            let term = Term::from_field_text(self.fields.doc, doc);
            Ok(searcher.search(&TermQuery::new(term, IndexRecordOption::Basic), &Count)? as u64)
        };
        Ok(IndexStats {
            evidence: count("evidence")?,
            snippets: count("snippet")?,
            outcomes: count("outcome")?,
            bytes: dir_bytes(&self.path),
        })
    }

    /// The newest time of an e-mail or utterance in the index (outcomes,
    /// which may come from a file, do not count).
    fn newest(&self) -> Result<Option<i64>, SearchError> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.doc, "evidence"),
            IndexRecordOption::Basic,
        );
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(1).order_by_fast_field::<i64>("ts", Order::Desc),
        )?;
        Ok(top.first().and_then(|(ts, _)| *ts))
    }

    /// Runs a search: relevance-ranked hits with highlighted matches.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let default_fields = if request.snippets {
            vec![f.text, f.rep_text, f.keywords]
        } else {
            vec![f.text, f.keywords]
        };
        let mut parser = QueryParser::for_index(&self.index, default_fields);
        parser.set_conjunction_by_default();
        let text_query = parser
            .parse_query(&request.query)
            .map_err(|e| SearchError::Query(format!("'{}': {e}", request.query)))?;
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        let doc_type = if request.snippets {
            "snippet"
        } else {
            "evidence"
        };
        let mut clauses = vec![
            (Occur::Must, text_query.box_clone()),
            (Occur::Must, term(f.doc, doc_type)),
        ];
        if let Some(account) = &request.account {
            clauses.push((Occur::Must, term(f.account, account)));
        }
        if let Some(kind) = &request.kind {
            let kind = Kind::parse(kind)
                .filter(|k| matches!(k, Kind::Email | Kind::Transcript))
                .ok_or_else(|| {
                    SearchError::Query(format!("kind: '{kind}' is not email or transcript"))
                })?;
            clauses.push((Occur::Must, term(f.kind, kind.as_str())));
        }
        let since = match &request.since {
            None => None,
            Some(since) => self.since(since)?,
        };
        if let Some(since) = since {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(f.ts, since)),
                    Bound::Unbounded,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let limit = request.limit.clamp(1, 1000);
        let (total, top) = searcher.search(
            &query,
            &(Count, TopDocs::with_limit(limit).order_by_score()),
        )?;
        let mut text_snippets = SnippetGenerator::create(&searcher, &*text_query, f.text)?;
        text_snippets.set_max_num_chars(FRAGMENT_CHARS);
        let mut rep_snippets = SnippetGenerator::create(&searcher, &*text_query, f.rep_text)?;
        rep_snippets.set_max_num_chars(FRAGMENT_CHARS);
        let outcomes = if request.snippets {
            self.outcomes()?
        } else {
            BTreeMap::new()
        };
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let first = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str().map(str::to_string))
            };
            let all = |field: Field| -> Vec<String> {
                doc.get_all(field)
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            };
            let text = first(f.text).unwrap_or_default();
            let highlighted = Highlight::of(&text_snippets, &text);
            let rep = first(f.rep_text).map(|rep| Highlight::of(&rep_snippets, &rep));
            let track = match (request.snippets, first(f.track)) {
                (true, Some(track)) => Some(self.track_stats(&track, &outcomes)?),
                _ => None,
            };
            hits.push(SearchHit {
                score,
                event_id: first(f.event_id).unwrap_or_default(),
                account: first(f.account).unwrap_or_default(),
                contact: first(f.contact),
                contact_title: first(f.contact_title),
                kind: first(f.kind).unwrap_or_default(),
                ts: Timestamp(
                    doc.get_first(f.ts)
                        .and_then(|v| v.as_i64())
                        .unwrap_or_default(),
                ),
                meeting_id: first(f.meeting),
                signals: all(f.signals),
                keywords: all(f.keywords),
                tags: all(f.tags),
                text: highlighted,
                rep_text: rep,
                track,
            });
        }
        Ok(SearchResults {
            query: request.query.clone(),
            total: total as u64,
            since: since.map(Timestamp),
            hits,
        })
    }

    /// `--since`: a duration back from the newest event in the index (event
    /// time, as everywhere in the engine), or an RFC 3339 time.
    fn since(&self, since: &str) -> Result<Option<i64>, SearchError> {
        if let Some(at) = Timestamp::parse_rfc3339(since) {
            return Ok(Some(at.millis()));
        }
        let back = parse_duration_ms(since).map_err(|e| {
            SearchError::Query(format!(
                "since: '{since}' is neither a duration nor an RFC 3339 time ({e})"
            ))
        })?;
        Ok(self.newest()?.map(|newest| newest - back))
    }

    /// Every outcome in the index, by account (the latest one wins).
    fn outcomes(&self) -> Result<BTreeMap<String, (i64, bool)>, SearchError> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(f.doc, "outcome"),
            IndexRecordOption::Basic,
        );
        let mut outcomes: BTreeMap<String, (i64, bool)> = BTreeMap::new();
        for address in searcher.search(&query, &DocSetCollector)? {
            let doc: TantivyDocument = searcher.doc(address)?;
            let account = doc.get_first(f.account).and_then(|v| v.as_str());
            let ts = doc.get_first(f.ts).and_then(|v| v.as_i64());
            let won = doc.get_first(f.won).and_then(|v| v.as_u64());
            if let (Some(account), Some(ts), Some(won)) = (account, ts, won) {
                let entry = outcomes
                    .entry(account.to_string())
                    .or_insert((ts, won == 1));
                if ts >= entry.0 {
                    *entry = (ts, won == 1);
                }
            }
        }
        Ok(outcomes)
    }

    /// The accounts a talk track was used with, and how they ended.
    fn track_stats(
        &self,
        track: &str,
        outcomes: &BTreeMap<String, (i64, bool)>,
    ) -> Result<TrackStats, SearchError> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.track, track),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.doc, "snippet"),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        // Each account the track was used with, and when it was first used.
        let mut accounts: BTreeMap<String, i64> = BTreeMap::new();
        for address in searcher.search(&query, &DocSetCollector)? {
            let doc: TantivyDocument = searcher.doc(address)?;
            let account = doc.get_first(f.account).and_then(|v| v.as_str());
            let ts = doc.get_first(f.ts).and_then(|v| v.as_i64());
            if let (Some(account), Some(ts)) = (account, ts) {
                let first = accounts.entry(account.to_string()).or_insert(ts);
                *first = (*first).min(ts);
            }
        }
        // An outcome counts when it came after the track was used.
        let (mut won, mut lost) = (0, 0);
        for (account, first_use) in &accounts {
            match outcomes.get(account) {
                Some((ts, true)) if ts >= first_use => won += 1,
                Some((ts, false)) if ts >= first_use => lost += 1,
                _ => {}
            }
        }
        Ok(TrackStats {
            accounts: accounts.len() as u64,
            won,
            lost,
            win_rate: (won + lost > 0).then(|| won as f64 / (won + lost) as f64),
        })
    }
}

impl EvidenceWriter {
    pub fn add(&mut self, doc: &EvidenceDoc) -> Result<(), SearchError> {
        let f = self.fields;
        let mut d = TantivyDocument::new();
        match doc {
            EvidenceDoc::Evidence(e) => {
                d.add_text(f.doc, "evidence");
                d.add_text(f.event_id, &e.event_id);
                d.add_text(f.account, &e.account);
                add_opt(&mut d, f.contact, &e.contact);
                add_opt(&mut d, f.contact_title, &e.contact_title);
                d.add_text(f.kind, e.kind.as_str());
                d.add_i64(f.ts, e.ts.millis());
                add_opt(&mut d, f.meeting, &e.meeting_id);
                add_all(&mut d, f.signals, &e.signals);
                add_all(&mut d, f.keywords, &e.keywords);
                d.add_text(f.text, &e.text);
            }
            EvidenceDoc::Snippet(s) => {
                d.add_text(f.doc, "snippet");
                d.add_text(f.event_id, &s.event_id);
                d.add_text(f.account, &s.account);
                d.add_text(f.kind, Kind::Transcript.as_str());
                d.add_i64(f.ts, s.ts.millis());
                add_opt(&mut d, f.meeting, &s.meeting_id);
                add_opt(&mut d, f.contact_title, &s.contact_title);
                add_all(&mut d, f.tags, &s.tags);
                add_all(&mut d, f.keywords, &s.keywords);
                d.add_text(f.text, &s.customer_text);
                d.add_text(f.rep_text, &s.rep_text);
                d.add_text(f.track, &s.track);
            }
            EvidenceDoc::Outcome(o) => {
                d.add_text(f.doc, "outcome");
                d.add_text(f.account, &o.account);
                d.add_i64(f.ts, o.ts.millis());
                d.add_u64(f.won, u64::from(o.won));
            }
        }
        self.writer.add_document(d)?;
        self.pending += 1;
        Ok(())
    }

    /// Documents added since the last commit.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Makes the added documents durable; [`EvidenceIndex::refresh`] then
    /// shows them to searches.
    pub fn commit(&mut self) -> Result<(), SearchError> {
        self.writer.commit()?;
        self.pending = 0;
        Ok(())
    }
}

fn add_opt(d: &mut TantivyDocument, field: Field, value: &Option<String>) {
    if let Some(value) = value {
        d.add_text(field, value);
    }
}

fn add_all(d: &mut TantivyDocument, field: Field, values: &[String]) {
    for value in values {
        d.add_text(field, value);
    }
}

/// What to search for. Also the JSON body of `intent.api.search`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Words or phrases (`"…"` for an exact phrase; `a OR b`, `-c`).
    pub query: String,
    #[serde(default)]
    pub account: Option<String>,
    /// `email` or `transcript`.
    #[serde(default)]
    pub kind: Option<String>,
    /// A duration back from the newest indexed event (`30d`), or an RFC 3339 time.
    #[serde(default)]
    pub since: Option<String>,
    /// Search the talk-track snippets instead of the evidence.
    #[serde(default)]
    pub snippets: bool,
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    10
}

/// A text fragment with the byte ranges (within it) that matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Highlight {
    pub fragment: String,
    pub matches: Vec<[usize; 2]>,
}

impl Highlight {
    fn of(generator: &SnippetGenerator, text: &str) -> Highlight {
        Self::unjoined(generator, text).joined()
    }

    fn unjoined(generator: &SnippetGenerator, text: &str) -> Highlight {
        let snippet = generator.snippet(text);
        if snippet.is_empty() {
            // Nothing in this field matched (the hit came from another
            // field): show its beginning.
            let end = text
                .char_indices()
                .nth(FRAGMENT_CHARS)
                .map_or(text.len(), |(i, _)| i);
            return Highlight {
                fragment: text[..end].to_string(),
                matches: Vec::new(),
            };
        }
        let range = snippet.fragment_range();
        if text.chars().count() <= FRAGMENT_CHARS {
            // Short enough to show whole (tantivy's fragment stops at the
            // last token, which would cut off closing punctuation).
            return Highlight {
                fragment: text.to_string(),
                matches: snippet
                    .highlighted()
                    .iter()
                    .map(|r| [r.start + range.start, r.end + range.start])
                    .collect(),
            };
        }
        Highlight {
            fragment: snippet.fragment().to_string(),
            matches: snippet
                .highlighted()
                .iter()
                .map(|r| [r.start, r.end])
                .collect(),
        }
    }

    /// Joins matches separated by nothing or only whitespace: a Chinese word
    /// or an English phrase is marked once.
    fn joined(mut self) -> Highlight {
        let mut joined: Vec<[usize; 2]> = Vec::with_capacity(self.matches.len());
        for m in self.matches {
            match joined.last_mut() {
                Some(last) if m[0] >= last[1] && self.fragment[last[1]..m[0]].trim().is_empty() => {
                    last[1] = m[1]
                }
                _ => joined.push(m),
            }
        }
        self.matches = joined;
        self
    }

    /// The fragment with each match wrapped in `open` … `close`.
    pub fn marked(&self, open: &str, close: &str) -> String {
        let mut out = String::with_capacity(self.fragment.len() + 16);
        let mut at = 0;
        for [start, end] in &self.matches {
            out.push_str(&self.fragment[at..*start]);
            out.push_str(open);
            out.push_str(&self.fragment[*start..*end]);
            out.push_str(close);
            at = *end;
        }
        out.push_str(&self.fragment[at..]);
        out
    }
}

/// How a talk track fared: the accounts it was used with and the outcomes
/// that followed its first use there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackStats {
    pub accounts: u64,
    pub won: u64,
    pub lost: u64,
    /// won / (won + lost); null until an outcome is known.
    pub win_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub score: f32,
    pub event_id: String,
    pub account: String,
    pub contact: Option<String>,
    pub contact_title: Option<String>,
    pub kind: String,
    pub ts: Timestamp,
    pub meeting_id: Option<String>,
    pub signals: Vec<String>,
    pub keywords: Vec<String>,
    pub tags: Vec<String>,
    /// The e-mail or utterance; for a snippet, the customer's answer.
    pub text: Highlight,
    /// For a snippet: the rep's line before the answer.
    pub rep_text: Option<Highlight>,
    /// For a snippet: the talk track's accounts and win rate.
    pub track: Option<TrackStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub query: String,
    /// Matching documents (hits holds the best `limit` of them).
    pub total: u64,
    /// The time `since` resolved to.
    pub since: Option<Timestamp>,
    pub hits: Vec<SearchHit>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct IndexStats {
    pub evidence: u64,
    pub snippets: u64,
    pub outcomes: u64,
    pub bytes: u64,
}

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
