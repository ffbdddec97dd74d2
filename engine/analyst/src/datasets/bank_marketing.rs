//! The UCI "Bank Marketing" data set (Moro et al., 2014; CC BY 4.0) as
//! events of our contract plus won/lost outcomes, so that `intent backtest`
//! and `intent tune` can be checked on labeled history nobody here wrote.
//!
//! Each row is one client of a Portuguese bank called in a telemarketing
//! campaign for a term deposit; `y` says whether the client subscribed.
//! Row *n* (1-based, header excluded) becomes account `bank-NNNN` with one
//! contact, and these events:
//!
//! | event | when | carries |
//! |---|---|---|
//! | `crm` `first_touch` | a day before the earliest contact below | contact title = `job`; `attrs`: `age`, `education_level` (0 illiterate … 6 university degree), `married`, `single`, `credit_default_unknown`, `housing_loan`, `personal_loan`, and the economic context of the campaign month: `emp_var_rate`, `cons_price_idx`, `cons_conf_idx`, `euribor3m`, `nr_employed` |
//! | `crm` `stage_changed`, stage `previous campaign: success\|failure` | `pdays` days before the final call (60 days when `pdays` is 999 "unknown") | only when `previous` > 0: `previous_contacts`, `previous_outcome_success` (1 or 0) |
//! | `crm` `call_logged`, once per call of this campaign (`campaign` calls) | every 2 days, the last one at the final call | `campaign_touch` (1, 2, …), `reached_on_mobile` (`contact` = cellular); the final call also `call_duration_s` |
//!
//! The outcome is `won` for `y = yes`, else `lost`, one hour after the final
//! call, when the client has said yes or no.
//!
//! What is placed rather than recovered: the sample gives the month and the
//! weekday of the final call but not the year or the day, so the final call
//! is put on the first such weekday of that month in a nominal year (2009;
//! the campaigns ran May 2008 – Nov 2010), in week `n mod 4` of the month at
//! 09:00 + `n mod 8` hours. The calls before it are 2 days apart, an
//! assumption: the data set counts them but does not date them. `unknown`
//! values become absent attributes, never zeros.
//!
//! `duration` is the length of the final call, which is known only once the
//! call is over, when its outcome is known too (the data set's own notes say
//! to use it for benchmarks only). It is kept on the final call so that a
//! backtest whose decision time includes that call shows the leak; at one
//! day before the outcome (`--at-days 1`) it is not yet known.

use std::fmt;

use serde_json::{json, Map, Value};

use intent_core::time::Timestamp;

/// The columns of `bank-additional.csv`, in order.
pub const COLUMNS: [&str; 21] = [
    "age",
    "job",
    "marital",
    "education",
    "default",
    "housing",
    "loan",
    "contact",
    "month",
    "day_of_week",
    "duration",
    "campaign",
    "pdays",
    "previous",
    "poutcome",
    "emp.var.rate",
    "cons.price.idx",
    "cons.conf.idx",
    "euribor3m",
    "nr.employed",
    "y",
];

/// Days between the calls of one campaign (the data set does not date them).
const CALL_SPACING_DAYS: i64 = 2;
/// When `pdays` is 999 although `previous` > 0: an assumed gap.
const UNKNOWN_PDAYS: i64 = 60;
/// Bounds that keep a corrupt row from making millions of events or dates
/// outside the contract (the data set's maxima are 56 calls and 27 days).
const MAX_CAMPAIGN_CALLS: i64 = 1_000;
const MAX_PDAYS: i64 = 10_000;
/// The nominal year of every final call.
const NOMINAL_YEAR: i32 = 2009;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A row that could not be converted: its line and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The data set as our events and outcomes (JSON values, one per line).
#[derive(Debug, Default)]
pub struct Converted {
    /// Events of all clients, in time order (ties in row order).
    pub events: Vec<Value>,
    pub outcomes: Vec<Value>,
    pub subscribed: usize,
    pub declined: usize,
}

/// One row, parsed.
struct Row {
    fields: csv::StringRecord,
    line: usize,
}

impl Row {
    fn get(&self, column: &str) -> &str {
        let index = COLUMNS
            .iter()
            .position(|c| *c == column)
            .expect("known column");
        &self.fields[index]
    }

    fn number(&self, column: &str) -> Result<f64, RowError> {
        let text = self.get(column);
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| self.error(format!("{column}: '{text}' is not a number")))
    }

    fn count(&self, column: &str) -> Result<i64, RowError> {
        let text = self.get(column);
        text.parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| self.error(format!("{column}: '{text}' is not a count")))
    }

    /// `yes` → 1, `no` → 0, `unknown` → absent.
    fn flag(&self, column: &str) -> Result<Option<u8>, RowError> {
        match self.get(column) {
            "yes" => Ok(Some(1)),
            "no" => Ok(Some(0)),
            "unknown" => Ok(None),
            other => Err(self.error(format!("{column}: '{other}' is not yes, no or unknown"))),
        }
    }

    fn error(&self, message: String) -> RowError {
        RowError {
            line: self.line,
            message,
        }
    }
}

/// Converts the text of `bank-additional.csv` (`;`-separated, quoted
/// strings, a header line), read with the `csv` crate, so a quoted field may
/// hold the separator. Every bad row is reported; nothing is converted when
/// any is bad.
pub fn convert(csv: &str) -> Result<Converted, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv.as_bytes());
    let mut records = reader.records();
    check_header(records.next())?;
    let mut out = Converted::default();
    let mut timed: Vec<(i64, usize, Value)> = Vec::new();
    let mut errors = Vec::new();
    let mut n = 0usize;
    for record in records {
        let row = match record {
            Ok(fields) if fields.iter().all(str::is_empty) => continue,
            Ok(fields) => Row {
                line: line_of(&fields),
                fields,
            },
            Err(e) => {
                errors.push(csv_error(&e));
                continue;
            }
        };
        n += 1;
        if row.fields.len() != COLUMNS.len() {
            errors.push(row.error(format!(
                "{} fields, expected {}",
                row.fields.len(),
                COLUMNS.len()
            )));
            continue;
        }
        match client(&row, n) {
            Ok(client) => {
                if client.subscribed {
                    out.subscribed += 1;
                } else {
                    out.declined += 1;
                }
                timed.extend(client.events.into_iter().map(|(ts, e)| (ts, n, e)));
                out.outcomes.push(client.outcome);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    timed.sort_by_key(|(ts, row, _)| (*ts, *row));
    out.events = timed.into_iter().map(|(_, _, e)| e).collect();
    Ok(out)
}

/// The first record must be the data set's header.
fn check_header(first: Option<Result<csv::StringRecord, csv::Error>>) -> Result<(), Vec<RowError>> {
    let header = match first {
        None => {
            return Err(vec![RowError {
                line: 1,
                message: "empty file".into(),
            }])
        }
        Some(Err(e)) => return Err(vec![csv_error(&e)]),
        Some(Ok(header)) => header,
    };
    if header.iter().ne(COLUMNS.iter().copied()) {
        return Err(vec![RowError {
            line: 1,
            message: format!("header is not the columns of bank-additional.csv: {COLUMNS:?}"),
        }]);
    }
    Ok(())
}

/// The line a record starts on (1-based).
fn line_of(record: &csv::StringRecord) -> usize {
    record.position().map_or(0, |p| p.line() as usize)
}

/// A CSV syntax or encoding error, with its line.
fn csv_error(error: &csv::Error) -> RowError {
    RowError {
        line: error.position().map_or(0, |p| p.line() as usize),
        message: match error.kind() {
            csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
            _ => error.to_string(),
        },
    }
}

struct Client {
    events: Vec<(i64, Value)>,
    outcome: Value,
    subscribed: bool,
}

fn client(row: &Row, n: usize) -> Result<Client, RowError> {
    let account = format!("bank-{n:04}");
    let final_call = final_call_ms(row, n)?;
    let campaign = row.count("campaign")?.max(1);
    let previous = row.count("previous")?;
    let pdays = row.count("pdays")?;
    let subscribed = match row.get("y") {
        "yes" => true,
        "no" => false,
        other => return Err(row.error(format!("y: '{other}' is not yes or no"))),
    };
    if campaign > MAX_CAMPAIGN_CALLS {
        return Err(row.error(format!(
            "campaign: {campaign} calls is more than {MAX_CAMPAIGN_CALLS}"
        )));
    }
    if pdays != 999 && pdays > MAX_PDAYS {
        return Err(row.error(format!(
            "pdays: {pdays} days is more than {MAX_PDAYS} (999 means never contacted)"
        )));
    }
    let first_call = final_call - (campaign - 1) * CALL_SPACING_DAYS * DAY_MS;
    let previous_at = (previous > 0).then(|| {
        let days = if pdays == 999 { UNKNOWN_PDAYS } else { pdays };
        final_call - days * DAY_MS
    });
    let first_touch = previous_at.unwrap_or(first_call).min(first_call) - DAY_MS;

    let mut contact = Map::new();
    contact.insert("id".into(), json!(format!("{account}-client")));
    if row.get("job") != "unknown" {
        contact.insert("title".into(), json!(row.get("job")));
    }
    // The record carries the client's job as title; later events name the
    // client by id only.
    let record_contact = Value::Object(contact);
    let contact = json!({ "id": format!("{account}-client") });
    let event = |id: String, ts: i64, crm_type: &str, attrs: Map<String, Value>| {
        let mut e = Map::new();
        e.insert("id".into(), json!(id));
        e.insert("ts".into(), json!(ts));
        e.insert("account".into(), json!(account));
        e.insert("kind".into(), json!("crm"));
        e.insert("type".into(), json!(crm_type));
        let who = if crm_type == "first_touch" {
            &record_contact
        } else {
            &contact
        };
        e.insert("contact".into(), who.clone());
        e.insert("attrs".into(), Value::Object(attrs));
        e
    };

    let mut events = Vec::new();
    let mut attrs = Map::new();
    attrs.insert("age".into(), json!(row.count("age")?));
    if let Some(level) = education_level(row.get("education")) {
        attrs.insert("education_level".into(), json!(level));
    }
    match row.get("marital") {
        "unknown" => {}
        status => {
            attrs.insert("married".into(), json!(u8::from(status == "married")));
            attrs.insert("single".into(), json!(u8::from(status == "single")));
        }
    }
    attrs.insert(
        "credit_default_unknown".into(),
        json!(u8::from(row.get("default") == "unknown")),
    );
    for (column, name) in [("housing", "housing_loan"), ("loan", "personal_loan")] {
        if let Some(v) = row.flag(column)? {
            attrs.insert(name.into(), json!(v));
        }
    }
    for (column, name) in [
        ("emp.var.rate", "emp_var_rate"),
        ("cons.price.idx", "cons_price_idx"),
        ("cons.conf.idx", "cons_conf_idx"),
        ("euribor3m", "euribor3m"),
        ("nr.employed", "nr_employed"),
    ] {
        attrs.insert(name.into(), json!(row.number(column)?));
    }
    events.push((
        first_touch,
        Value::Object(event(
            format!("{account}-first-touch"),
            first_touch,
            "first_touch",
            attrs,
        )),
    ));

    if let Some(at) = previous_at {
        let outcome = row.get("poutcome");
        if !matches!(outcome, "success" | "failure" | "nonexistent") {
            return Err(row.error(format!(
                "poutcome: '{outcome}' is not success, failure or nonexistent"
            )));
        }
        let mut attrs = Map::new();
        attrs.insert("previous_contacts".into(), json!(previous));
        attrs.insert(
            "previous_outcome_success".into(),
            json!(u8::from(outcome == "success")),
        );
        let mut e = event(format!("{account}-previous"), at, "stage_changed", attrs);
        e.insert(
            "stage".into(),
            json!(format!("previous campaign: {outcome}")),
        );
        events.push((at, Value::Object(e)));
    }

    let mobile = match row.get("contact") {
        "cellular" => 1,
        "telephone" => 0,
        other => return Err(row.error(format!("contact: '{other}' is not cellular or telephone"))),
    };
    let duration = row.count("duration")?;
    for touch in 1..=campaign {
        let at = first_call + (touch - 1) * CALL_SPACING_DAYS * DAY_MS;
        let mut attrs = Map::new();
        attrs.insert("campaign_touch".into(), json!(touch));
        attrs.insert("reached_on_mobile".into(), json!(mobile));
        if touch == campaign {
            attrs.insert("call_duration_s".into(), json!(duration));
        }
        events.push((
            at,
            Value::Object(event(
                format!("{account}-call-{touch}"),
                at,
                "call_logged",
                attrs,
            )),
        ));
    }
    let outcome = json!({
        "account": account,
        "outcome": if subscribed { "won" } else { "lost" },
        "ts": final_call + HOUR_MS,
    });
    Ok(Client {
        events,
        outcome,
        subscribed,
    })
}

/// `basic.4y` … `university.degree` as years-of-school order; `unknown` → None.
fn education_level(education: &str) -> Option<u8> {
    Some(match education {
        "illiterate" => 0,
        "basic.4y" => 1,
        "basic.6y" => 2,
        "basic.9y" => 3,
        "high.school" => 4,
        "professional.course" => 5,
        "university.degree" => 6,
        _ => return None,
    })
}

/// The final call: the first `day_of_week` of `month` in the nominal year,
/// moved on by `n mod 4` weeks, at 09:00 + `n mod 8` hours UTC.
fn final_call_ms(row: &Row, n: usize) -> Result<i64, RowError> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let month = row.get("month");
    let month = MONTHS
        .iter()
        .position(|m| *m == month)
        .ok_or_else(|| row.error(format!("month: '{month}' is not jan … dec")))?;
    let weekday = row.get("day_of_week");
    let weekday = WEEKDAYS
        .iter()
        .position(|d| *d == weekday)
        .ok_or_else(|| row.error(format!("day_of_week: '{weekday}' is not mon … sun")))?;
    let first_of_month =
        chrono::NaiveDate::from_ymd_opt(NOMINAL_YEAR, month as u32 + 1, 1).expect("valid date");
    let offset = (weekday as i64
        - chrono::Datelike::weekday(&first_of_month).num_days_from_monday() as i64)
        .rem_euclid(7);
    let day = first_of_month
        .and_hms_opt(9 + (n % 8) as u32, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp_millis()
        + (offset + 7 * (n % 4) as i64) * DAY_MS;
    Timestamp::from_millis(day)
        .map(|t| t.millis())
        .ok_or_else(|| row.error("date out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#""age";"job";"marital";"education";"default";"housing";"loan";"contact";"month";"day_of_week";"duration";"campaign";"pdays";"previous";"poutcome";"emp.var.rate";"cons.price.idx";"cons.conf.idx";"euribor3m";"nr.employed";"y""#;

    #[test]
    fn a_row_becomes_dated_crm_events_and_an_outcome() {
        // A retired client reached on a mobile on the 3rd call, previously a
        // success 6 days earlier; subscribed.
        let csv = format!(
            "{HEADER}\n\
             71;\"retired\";\"married\";\"basic.4y\";\"no\";\"yes\";\"unknown\";\"cellular\";\"oct\";\"tue\";412;3;6;2;\"success\";-3.4;92.431;-26.9;0.742;5017.5;\"yes\"\n"
        );
        let out = convert(&csv).unwrap();
        assert_eq!((out.subscribed, out.declined), (1, 0));
        let ids: Vec<&str> = out
            .events
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "bank-0001-first-touch",
                "bank-0001-previous",
                "bank-0001-call-1",
                "bank-0001-call-2",
                "bank-0001-call-3"
            ]
        );
        // Row 1: the first Tuesday of October 2009 (the 6th) plus one week, 10:00.
        let final_call = Timestamp::parse_rfc3339("2009-10-13T10:00:00Z")
            .unwrap()
            .millis();
        assert_eq!(out.events[4]["ts"], json!(final_call));
        assert_eq!(out.events[3]["ts"], json!(final_call - 2 * DAY_MS));
        assert_eq!(out.events[1]["ts"], json!(final_call - 6 * DAY_MS));
        assert_eq!(out.events[0]["ts"], json!(final_call - 7 * DAY_MS));
        assert_eq!(out.events[4]["attrs"]["call_duration_s"], json!(412));
        assert_eq!(out.events[3]["attrs"].get("call_duration_s"), None);
        assert_eq!(out.events[4]["attrs"]["reached_on_mobile"], json!(1));
        assert_eq!(out.events[1]["stage"], json!("previous campaign: success"));
        assert_eq!(out.events[1]["attrs"]["previous_outcome_success"], json!(1));
        let first = &out.events[0]["attrs"];
        assert_eq!(first["age"], json!(71));
        assert_eq!(first["education_level"], json!(1));
        assert_eq!(first["housing_loan"], json!(1));
        assert_eq!(first.get("personal_loan"), None, "unknown stays absent");
        assert_eq!(first["euribor3m"], json!(0.742));
        assert_eq!(out.events[0]["contact"]["title"], json!("retired"));
        assert_eq!(out.events[4]["contact"], json!({"id": "bank-0001-client"}));
        assert_eq!(
            out.outcomes[0],
            json!({"account": "bank-0001", "outcome": "won", "ts": final_call + HOUR_MS})
        );
        // Every event passes the engine's own decoder.
        for e in &out.events {
            let text = e.to_string();
            intent_core::ingest::decode(text.as_bytes())
                .unwrap_or_else(|err| panic!("{text}: {err}"));
        }
    }

    #[test]
    fn a_quoted_field_may_hold_the_separator_and_crlf_ends_lines() {
        let row = "30;\"admin.;it\";\"single\";\"university.degree\";\"no\";\"no\";\"no\";\"telephone\";\"may\";\"mon\";100;1;999;0;\"nonexistent\";1.1;93.994;-36.4;4.857;5191;\"no\"";
        let csv = format!("{HEADER}\r\n{row}\r\n\r\n{row}\r\n");
        let out = convert(&csv).unwrap();
        assert_eq!(
            (out.subscribed, out.declined),
            (0, 2),
            "the blank line is skipped"
        );
        assert_eq!(out.events[0]["contact"]["title"], json!("admin.;it"));
    }

    #[test]
    fn bad_rows_are_all_reported_with_their_line() {
        let good = "30;\"admin.\";\"single\";\"university.degree\";\"no\";\"no\";\"no\";\"telephone\";\"may\";\"mon\";100;1;999;0;\"nonexistent\";1.1;93.994;-36.4;4.857;5191;\"no\"";
        let csv = format!(
            "{HEADER}\n{good}\n{}\n{}\n{}\n{}\n",
            good.replace("\"may\"", "\"maj\""),
            good.replace(";100;", ";-5;"),
            good.replacen(";\"no\"", "", 1),
            good.replace(";100;1;999;", ";100;999999999;999;"),
        );
        let errors: Vec<String> = convert(&csv)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "line 3: month: 'maj' is not jan … dec",
                "line 4: duration: '-5' is not a count",
                "line 5: 20 fields, expected 21",
                "line 6: campaign: 999999999 calls is more than 1000",
            ]
        );
        assert!(convert("\"age\";\"job\"\n").unwrap_err()[0]
            .message
            .starts_with("header is not"));
    }
}
