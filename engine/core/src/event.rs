//! The event contract: validated events of the four kinds the engine ingests.
//!
//! Values here are produced only by [`crate::ingest::decode`], so every field
//! already satisfies the contract documented in README.md and
//! `engine/event.schema.json`. Strings borrow from the input buffer where the
//! JSON had no escapes, so decoding allocates little.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::time::Timestamp;

/// The four event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A page visit or other behaviour on a website.
    Web,
    /// An e-mail to or from the account.
    Email,
    /// One utterance of a meeting or call transcript.
    Transcript,
    /// A change recorded in the CRM.
    Crm,
}

impl Kind {
    /// Every kind, in wire order.
    pub const ALL: [Kind; 4] = [Kind::Web, Kind::Email, Kind::Transcript, Kind::Crm];

    /// The wire name (`web`, `email`, `transcript`, `crm`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Web => "web",
            Kind::Email => "email",
            Kind::Transcript => "transcript",
            Kind::Crm => "crm",
        }
    }

    /// The kind with this wire name; `None` for anything else.
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// What a visitor did on a web page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebAction {
    /// Read or watched a page.
    View,
    /// Downloaded a document.
    Download,
    /// Registered on the site, e.g. for a webinar.
    Register,
    /// Took part in a live Q&A.
    Qa,
    /// Searched the site.
    Search,
    /// Submitted a form.
    Form,
}

impl WebAction {
    /// Every action, in wire order.
    pub const ALL: [WebAction; 6] = [
        WebAction::View,
        WebAction::Download,
        WebAction::Register,
        WebAction::Qa,
        WebAction::Search,
        WebAction::Form,
    ];

    /// The wire name (`view`, `download`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            WebAction::View => "view",
            WebAction::Download => "download",
            WebAction::Register => "register",
            WebAction::Qa => "qa",
            WebAction::Search => "search",
            WebAction::Form => "form",
        }
    }

    /// The action with this wire name; `None` for anything else.
    pub fn parse(text: &str) -> Option<WebAction> {
        WebAction::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Direction of an e-mail as seen from the seller's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by the customer to the seller (the default when absent).
    Inbound,
    /// Sent by the seller to the customer.
    Outbound,
}

impl Direction {
    /// The wire name (`inbound` or `outbound`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// The direction with this wire name; `None` for anything else.
    pub fn parse(text: &str) -> Option<Direction> {
        match text {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// Who is speaking in a transcript utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpeakerRole {
    /// Someone on the account's side (the default when absent).
    Customer,
    /// The seller's representative.
    Rep,
}

impl SpeakerRole {
    /// The wire name (`customer` or `rep`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpeakerRole::Customer => "customer",
            SpeakerRole::Rep => "rep",
        }
    }

    /// The role with this wire name; `None` for anything else.
    pub fn parse(text: &str) -> Option<SpeakerRole> {
        match text {
            "customer" => Some(SpeakerRole::Customer),
            "rep" => Some(SpeakerRole::Rep),
            _ => None,
        }
    }
}

/// CRM event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrmType {
    /// The account's first recorded contact with the seller.
    FirstTouch,
    /// A contact's job title changed (`new_title` always set, `old_title` when known).
    ContactTitleChanged,
    /// A contact left the account.
    ContactLeft,
    /// The deal moved to another pipeline stage (named in `stage`).
    StageChanged,
    /// The deal was won.
    DealWon,
    /// The deal was lost.
    DealLost,
    /// A phone call the CRM logged (its length and the like in `attrs`);
    /// what was said, when recorded, arrives as transcript events.
    CallLogged,
}

impl CrmType {
    /// Every CRM type, in wire order.
    pub const ALL: [CrmType; 7] = [
        CrmType::FirstTouch,
        CrmType::ContactTitleChanged,
        CrmType::ContactLeft,
        CrmType::StageChanged,
        CrmType::DealWon,
        CrmType::DealLost,
        CrmType::CallLogged,
    ];

    /// The wire name (`first_touch`, `contact_title_changed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CrmType::FirstTouch => "first_touch",
            CrmType::ContactTitleChanged => "contact_title_changed",
            CrmType::ContactLeft => "contact_left",
            CrmType::StageChanged => "stage_changed",
            CrmType::DealWon => "deal_won",
            CrmType::DealLost => "deal_lost",
            CrmType::CallLogged => "call_logged",
        }
    }

    /// The CRM type with this wire name; `None` for anything else.
    pub fn parse(text: &str) -> Option<CrmType> {
        CrmType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// The person behind an event, when known.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact<'a> {
    /// The contact's id in the source system (at most
    /// [`MAX_ID_CHARS`](crate::ingest::MAX_ID_CHARS) characters).
    pub id: Option<Cow<'a, str>>,
    /// Display name.
    pub name: Option<Cow<'a, str>>,
    /// Job title, as free text.
    pub title: Option<Cow<'a, str>>,
    /// E-mail address (not validated beyond being a string).
    pub email: Option<Cow<'a, str>>,
}

impl Contact<'_> {
    /// The key a contact is known by in the intent graph: its id, else its
    /// e-mail, else its name.
    pub fn key(&self) -> Option<&str> {
        self.id
            .as_deref()
            .or(self.email.as_deref())
            .or(self.name.as_deref())
    }
}

/// The web-specific fields of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct WebEvent<'a> {
    /// The page's URL (required).
    pub url: Cow<'a, str>,
    /// The page's title.
    pub title: Option<Cow<'a, str>>,
    /// Time spent on the page, in milliseconds (non-negative).
    pub dwell_ms: Option<u64>,
    /// What the visitor did; `None` when the event did not say.
    pub action: Option<WebAction>,
    /// The URL the visitor came from.
    pub referrer: Option<Cow<'a, str>>,
    /// Free text such as comments.
    pub text: Option<Cow<'a, str>>,
}

/// The e-mail-specific fields of an event; at least one of `subject` and
/// `body` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailEvent<'a> {
    /// Subject line (a short field).
    pub subject: Option<Cow<'a, str>>,
    /// Message body (a long text field).
    pub body: Option<Cow<'a, str>>,
    /// Direction of the mail; `None` (absent) counts as inbound.
    pub direction: Option<Direction>,
}

/// The transcript-specific fields of an event: one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptEvent<'a> {
    /// What was said (required; a long text field).
    pub text: Cow<'a, str>,
    /// The speaker's name or label, as the transcript gives it.
    pub speaker: Option<Cow<'a, str>>,
    /// The speaker's side; `None` (absent) counts as customer.
    pub speaker_role: Option<SpeakerRole>,
    /// Id of the meeting or call the utterance belongs to.
    pub meeting_id: Option<Cow<'a, str>>,
}

/// The CRM-specific fields of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmEvent<'a> {
    /// What changed.
    pub crm_type: CrmType,
    /// The contact's previous title, on `contact_title_changed`.
    pub old_title: Option<Cow<'a, str>>,
    /// The contact's new title; always set on `contact_title_changed`.
    pub new_title: Option<Cow<'a, str>>,
    /// The deal stage reached, on `stage_changed`.
    pub stage: Option<Cow<'a, str>>,
    /// Optional industry of the account, as the CRM knows it.
    pub industry: Option<Cow<'a, str>>,
}

/// The kind-specific part of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    /// A `web` event.
    Web(WebEvent<'a>),
    /// An `email` event.
    Email(EmailEvent<'a>),
    /// A `transcript` event.
    Transcript(TranscriptEvent<'a>),
    /// A `crm` event.
    Crm(CrmEvent<'a>),
}

/// One validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// The event's id (1–128 chars); a repeated id is a duplicate.
    pub id: Cow<'a, str>,
    /// Event time, in Unix milliseconds; drives decay, windows and silence.
    pub ts: Timestamp,
    /// The account the event belongs to (1–64 chars of `[A-Za-z0-9_-]`).
    pub account: Cow<'a, str>,
    /// The person behind the event, when the event names one.
    pub contact: Option<Contact<'a>>,
    /// Free numeric attributes of any kind of event, e.g. `video_views` on a
    /// page or `call_duration_s` on a call; signal conditions and
    /// attribute rules test them.
    pub attrs: Vec<(Cow<'a, str>, f64)>,
    /// The kind-specific fields, which also determine [`Event::kind`].
    pub body: Body<'a>,
}

impl Event<'_> {
    /// The kind of event, as given by its body.
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Web(_) => Kind::Web,
            Body::Email(_) => Kind::Email,
            Body::Transcript(_) => Kind::Transcript,
            Body::Crm(_) => Kind::Crm,
        }
    }

    /// The value of a numeric attribute, when the event carries it.
    pub fn attr(&self, name: &str) -> Option<f64> {
        self.attrs
            .iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| *v)
    }

    /// Whether this event is the customer reaching out or engaging: a web
    /// visit, an inbound e-mail or a customer utterance. Outbound e-mails, rep
    /// utterances and CRM bookkeeping are not.
    pub fn is_inbound_customer_activity(&self) -> bool {
        match &self.body {
            Body::Web(_) => true,
            Body::Email(email) => email.direction != Some(Direction::Outbound),
            Body::Transcript(t) => t.speaker_role != Some(SpeakerRole::Rep),
            Body::Crm(_) => false,
        }
    }

    /// The event in its wire form (the inverse of [`crate::ingest::decode`];
    /// `ts` is written as integer milliseconds).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("ts".into(), json!(self.ts.millis()));
        out.insert("account".into(), json!(self.account));
        out.insert("kind".into(), json!(self.kind().as_str()));
        if let Some(contact) = &self.contact {
            let mut c = Map::new();
            put_opt(&mut c, "id", &contact.id);
            put_opt(&mut c, "name", &contact.name);
            put_opt(&mut c, "title", &contact.title);
            put_opt(&mut c, "email", &contact.email);
            out.insert("contact".into(), Value::Object(c));
        }
        if !self.attrs.is_empty() {
            let attrs: Map<String, Value> = self
                .attrs
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            out.insert("attrs".into(), Value::Object(attrs));
        }
        match &self.body {
            Body::Web(web) => {
                out.insert("url".into(), json!(web.url));
                put_opt(&mut out, "title", &web.title);
                if let Some(dwell) = web.dwell_ms {
                    out.insert("dwell_ms".into(), json!(dwell));
                }
                if let Some(action) = web.action {
                    out.insert("action".into(), json!(action.as_str()));
                }
                put_opt(&mut out, "referrer", &web.referrer);
                put_opt(&mut out, "text", &web.text);
            }
            Body::Email(email) => {
                put_opt(&mut out, "subject", &email.subject);
                put_opt(&mut out, "body", &email.body);
                if let Some(direction) = email.direction {
                    out.insert("direction".into(), json!(direction.as_str()));
                }
            }
            Body::Transcript(t) => {
                out.insert("text".into(), json!(t.text));
                put_opt(&mut out, "speaker", &t.speaker);
                if let Some(role) = t.speaker_role {
                    out.insert("speaker_role".into(), json!(role.as_str()));
                }
                put_opt(&mut out, "meeting_id", &t.meeting_id);
            }
            Body::Crm(crm) => {
                out.insert("type".into(), json!(crm.crm_type.as_str()));
                put_opt(&mut out, "old_title", &crm.old_title);
                put_opt(&mut out, "new_title", &crm.new_title);
                put_opt(&mut out, "stage", &crm.stage);
                put_opt(&mut out, "industry", &crm.industry);
            }
        }
        Value::Object(out)
    }
}

fn put_opt(map: &mut Map<String, Value>, key: &str, value: &Option<Cow<'_, str>>) {
    if let Some(v) = value {
        map.insert(key.into(), json!(v));
    }
}
