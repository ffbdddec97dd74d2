//! The NATS subject and stream names the service uses, all derived from one
//! prefix (default `intent`), and the mapping of account ids to subject tokens.

/// Reserved event kind under which the engine logs its own clock ticks into
/// the event stream (see `clock`); clients never publish it.
pub const CLOCK_KIND: &str = "_clock";

/// A subject prefix that is not a literal NATS subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subject prefix '{0}' is not a valid literal subject (dot-separated tokens without *, > or spaces)")]
pub struct InvalidPrefix(pub String);

/// Subjects and stream names for one subject prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The names under `prefix`, which must be a literal subject.
    pub fn new(prefix: &str) -> Result<Subjects, InvalidPrefix> {
        if prefix.is_empty()
            || prefix
                .split('.')
                .any(|t| t.is_empty() || t.contains(['*', '>']) || t.contains(char::is_whitespace))
        {
            return Err(InvalidPrefix(prefix.to_string()));
        }
        Ok(Subjects {
            prefix: prefix.to_string(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `intent.events.>`: everything the engine consumes.
    pub fn events_filter(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// `intent.events.<kind>.<account>`.
    pub fn event(&self, kind: &str, account: &str) -> String {
        format!("{}.events.{kind}.{}", self.prefix, subject_token(account))
    }

    /// Where the engine logs its clock ticks (inside the event stream, so a
    /// replay of the stream sees them in the same order).
    pub fn clock(&self) -> String {
        format!("{}.events.{CLOCK_KIND}", self.prefix)
    }

    /// `intent.actions.>`.
    pub fn actions_filter(&self) -> String {
        format!("{}.actions.>", self.prefix)
    }

    /// `intent.actions.<rule>.<account>`.
    pub fn action(&self, rule: &str, account: &str) -> String {
        format!(
            "{}.actions.{}.{}",
            self.prefix,
            subject_token(rule),
            subject_token(account)
        )
    }

    /// `intent.dlq.>`.
    pub fn dlq_filter(&self) -> String {
        format!("{}.dlq.>", self.prefix)
    }

    /// `intent.dlq.<kind>`.
    pub fn dlq(&self, kind: &str) -> String {
        format!("{}.dlq.{}", self.prefix, subject_token(kind))
    }

    /// `intent.api`: the group of the micro-service endpoints.
    pub fn api(&self) -> String {
        format!("{}.api", self.prefix)
    }

    /// `intent.api.<endpoint>`.
    pub fn api_endpoint(&self, endpoint: &str) -> String {
        format!("{}.api.{endpoint}", self.prefix)
    }

    /// The subject that holds the engine's progress marker.
    pub fn progress(&self) -> String {
        format!("{}.engine.progress", self.prefix)
    }

    /// The tokens after `intent.events.` of an event subject: (kind, account
    /// token), either absent when the subject is shorter.
    pub fn parse_event<'a>(&self, subject: &'a str) -> (Option<&'a str>, Option<&'a str>) {
        let rest = subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix(".events."));
        match rest {
            None => (None, None),
            Some(rest) => match rest.split_once('.') {
                Some((kind, account)) => (Some(kind), Some(account)),
                None => (Some(rest), None),
            },
        }
    }
}

/// An id as one subject token: characters NATS gives a meaning in subjects
/// (`.`, `*`, `>`) and whitespace or control characters become `_`; an empty
/// id becomes `_`.
pub fn subject_token(id: &str) -> String {
    if id.is_empty() {
        return "_".into();
    }
    id.chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_prefix() {
        let s = Subjects::new("crm.intent").unwrap();
        assert_eq!(s.events_filter(), "crm.intent.events.>");
        assert_eq!(s.event("web", "acme"), "crm.intent.events.web.acme");
        assert_eq!(
            s.action("silent_lead", "acme.cn"),
            "crm.intent.actions.silent_lead.acme_cn"
        );
        assert_eq!(s.dlq("email"), "crm.intent.dlq.email");
        assert_eq!(s.api_endpoint("score"), "crm.intent.api.score");
    }

    #[test]
    fn invalid_prefixes_are_refused() {
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a"] {
            assert!(Subjects::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_never_split_or_wildcard() {
        assert_eq!(subject_token("a.b*c>d e\tf"), "a_b_c_d_e_f");
        assert_eq!(subject_token(""), "_");
        assert_eq!(subject_token("医院-中山"), "医院-中山");
    }

    #[test]
    fn event_subjects_parse_back() {
        let s = Subjects::new("intent").unwrap();
        assert_eq!(
            s.parse_event("intent.events.web.acme_cn"),
            (Some("web"), Some("acme_cn"))
        );
        assert_eq!(s.parse_event("intent.events.web"), (Some("web"), None));
        assert_eq!(s.parse_event("other.events.web.x"), (None, None));
    }
}
