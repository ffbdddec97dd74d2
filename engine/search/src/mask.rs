//! Masking of personal data in free text (English and Chinese sales e-mails,
//! meeting transcripts).
//!
//! # What is masked
//!
//! Each finding is replaced by a fixed placeholder ([`PiiKind::placeholder`]):
//!
//! | kind | placeholder | recognised forms |
//! | --- | --- | --- |
//! | e-mail | `[email]` | ASCII local part `@` ASCII domain ending in a TLD of 2+ letters, also glued to Chinese text (`邮箱zhang.wei@example.com。`) |
//! | ID number | `[id-number]` | 18-character Chinese resident identity number: 17 digits + check character (digit or `X`/`x`) with a valid ISO 7064 MOD 11-2 checksum and a plausible birth date (1900–2099, month 01–12, day 01–31) |
//! | bank card | `[card]` | 13–19 digits, contiguous or in the printed layouts 4-4-4-4(-1…3), 4-4-4-3, 4-6-5, 4-6-4, 6-12 and 6-13, separated by single spaces or dashes (`4111 1111 1111 1111`, `6222-0212-3456-7890-128`), Luhn-valid, first digit not `0` |
//! | phone | `[phone]` | Chinese mobiles (`13812345678`, `138 1234 5678`, `138-1234-5678`, prefixed by `+86`, `+86 `, `0086`, `(+86)`, `86-`); Chinese landlines (`010-12345678`, `0755 1234 5678`, `(010) 12345678`, optional `-ext`); international numbers (`+` country code, 8–15 digits in total, groups separated by single spaces, dashes, dots or a parenthesised area code); North American numbers (`(415) 555-0132`, `415-555-0132`, `415.555.0132`, `1-800-555-0132`) |
//!
//! # How
//!
//! The `regex` crate has no look-around and its `\b` treats CJK characters as
//! word characters, so regexes only propose candidates; code then checks
//!
//! * **boundaries**: the characters right before and after a digit-based match
//!   must not be ASCII letters or digits (Chinese characters and punctuation
//!   are boundaries: `手机13812345678，` is masked, `813812345678999` is not).
//!   In addition a match may not be glued to another digit by a single `-` or
//!   `.` (`978-7-111-…`, `3.14…`, `2024-05-01`): such tokens are taken whole.
//! * **checksums**: MOD 11-2 and birth date for ID numbers, Luhn for cards.
//!
//! Kinds are applied in a fixed order, each on the output of the previous one:
//! e-mails, ID numbers, bank cards, phones. Hence a valid 18-digit ID is an ID
//! and not a card, and digits inside an e-mail are never a phone. The rounds
//! repeat until nothing more is found (one extra, cheap round when something
//! was masked), so masking is idempotent: `mask(mask(x)) == mask(x)`.
//!
//! Text without an ASCII digit and without `@` is returned at once, borrowed;
//! text in which nothing is found is returned borrowed as well.
//!
//! # What is deliberately not masked
//!
//! * Names, postal addresses, company names, QQ/WeChat handles: no reliable
//!   pattern; they need a dictionary or a model.
//! * Old 15-digit ID numbers: they carry no checksum, so they cannot be told
//!   apart from order numbers. ID numbers written with spaces or dashes inside
//!   (`110105 19491231 002X`) are not recognised either.
//! * Digit runs that fail their checksum (Luhn-invalid 16-digit order numbers,
//!   18-digit strings with a wrong ID check character), 13-digit numbers that
//!   are valid ISBN-13s (`978…`/`979…`), and card-like numbers starting with
//!   `0` or preceded by `+` (those are phone numbers).
//! * Phone numbers without a recognisable shape: 7-digit local numbers
//!   (`555-0132`), landlines without a separator after the area code
//!   (`01012345678`), international numbers without the leading `+`.
//! * Non-ASCII (internationalised) e-mail addresses.
//! * Dates, times, amounts, percentages, versions, IPv4 addresses, years and
//!   hashes: they do not match any of the shapes above.
//!
//! Ambiguity is resolved by taking, within a run of space-separated digit
//! groups, the leftmost and then longest Luhn-valid group sequence as a card.

use regex::Regex;
use std::borrow::Cow;
use std::ops::Range;

/// The kind of personal data a span was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number (Chinese mobile or landline, international, North American).
    Phone,
    /// A Chinese 18-character resident identity number.
    IdNumber,
    /// A Luhn-valid bank card number.
    BankCard,
}

impl PiiKind {
    /// The text that replaces a masked span of this kind.
    ///
    /// Placeholders contain no digit and no `@`, so they never look like
    /// personal data themselves.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[email]",
            PiiKind::Phone => "[phone]",
            PiiKind::IdNumber => "[id-number]",
            PiiKind::BankCard => "[card]",
        }
    }
}

/// How many spans of each kind were masked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MaskCounts {
    /// Masked e-mail addresses.
    pub email: u32,
    /// Masked phone numbers.
    pub phone: u32,
    /// Masked ID numbers.
    pub id_number: u32,
    /// Masked bank card numbers.
    pub bank_card: u32,
}

impl MaskCounts {
    /// Total number of masked spans.
    pub fn total(&self) -> u32 {
        self.email
            .saturating_add(self.phone)
            .saturating_add(self.id_number)
            .saturating_add(self.bank_card)
    }

    /// Adds `other` to these counts, kind by kind.
    pub fn add(&mut self, other: MaskCounts) {
        self.email = self.email.saturating_add(other.email);
        self.phone = self.phone.saturating_add(other.phone);
        self.id_number = self.id_number.saturating_add(other.id_number);
        self.bank_card = self.bank_card.saturating_add(other.bank_card);
    }

    /// Adds `n` findings of `kind`.
    fn bump(&mut self, kind: PiiKind, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let slot = match kind {
            PiiKind::Email => &mut self.email,
            PiiKind::Phone => &mut self.phone,
            PiiKind::IdNumber => &mut self.id_number,
            PiiKind::BankCard => &mut self.bank_card,
        };
        *slot = slot.saturating_add(n);
    }
}

/// E-mail: ASCII local part, `@`, dot-separated domain labels, TLD of 2+ letters.
const EMAIL_PATTERN: &str = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}";
/// Candidate ID number: 17 digits and a check character.
const ID_PATTERN: &str = r"[0-9]{17}[0-9Xx]";
/// A run of digit groups joined by single spaces or dashes (card candidates).
const DIGIT_RUN_PATTERN: &str = r"[0-9]+(?:[ \-][0-9]+)*";
/// Chinese mobile, optionally with a +86 prefix, contiguous or 3-4-4.
const CN_MOBILE_PATTERN: &str = r"(?:(?:\+86|0086|\(\+86\)|\+\(86\))[ \-]?|86[ \-])?1[3-9][0-9](?:[0-9]{8}|-[0-9]{4}-[0-9]{4}| [0-9]{4} [0-9]{4})";
/// International: `+`, country code, groups separated by one space, dash or
/// dot, or by a parenthesised area code. The digit count is checked in code.
const INTERNATIONAL_PATTERN: &str =
    r"\+[1-9][0-9]*(?:(?:[ .\-]?\([0-9]{1,5}\)[ .\-]?|[ .\-])[0-9]+)*";
/// North American: `(415) 555-0132`, `415-555-0132`, `415.555.0132`, optional `1-`.
const NORTH_AMERICAN_PATTERN: &str = r"(?:1[ .\-])?(?:\([2-9][0-9]{2}\) ?[2-9][0-9]{2}[ \-][0-9]{4}|[2-9][0-9]{2}-[2-9][0-9]{2}-[0-9]{4}|[2-9][0-9]{2}\.[2-9][0-9]{2}\.[0-9]{4})";
/// Chinese landline: area code `0` + 2–3 digits (or in parentheses), a space
/// or dash, 7–8 digits (optionally split 3-4 or 4-4), optional `-extension`.
const CN_LANDLINE_PATTERN: &str = r"(?:\(0[1-9][0-9]{1,2}\) ?|0[1-9][0-9]{1,2}[ \-])(?:[0-9]{7,8}|[0-9]{3,4}[ \-][0-9]{4})(?:-[0-9]{1,5})?";

/// Bank card length bounds, in digits.
const CARD_DIGITS: Range<usize> = 13..20;
/// International phone length bounds, in digits (country code included).
const INTERNATIONAL_DIGITS: Range<usize> = 8..16;
/// Characters that join two digit groups into one token (`2024-05-01`, `1.2`).
const GLUE: [char; 2] = ['-', '.'];
/// MOD 11-2 weights of the first 17 ID characters.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// ID check character for each weighted sum modulo 11.
const ID_CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// A finder returns the sorted, non-overlapping byte spans to mask.
type Finder = fn(&Masker, &str) -> Vec<Range<usize>>;

/// Masks e-mails, phone numbers, ID numbers and bank cards in free text.
///
/// Construction compiles a handful of regexes: build one `Masker` and reuse it
/// (it is `Send + Sync`, so it can be shared between threads).
#[derive(Debug, Clone)]
pub struct Masker {
    email: Regex,
    id_number: Regex,
    digit_run: Regex,
    cn_mobile: Regex,
    international: Regex,
    north_american: Regex,
    cn_landline: Regex,
}

impl Default for Masker {
    fn default() -> Self {
        Self::new()
    }
}

impl Masker {
    /// Compiles the patterns.
    pub fn new() -> Masker {
        let compile = |pattern: &str| Regex::new(pattern).expect("built-in pattern is valid");
        Masker {
            email: compile(EMAIL_PATTERN),
            id_number: compile(ID_PATTERN),
            digit_run: compile(DIGIT_RUN_PATTERN),
            cn_mobile: compile(CN_MOBILE_PATTERN),
            international: compile(INTERNATIONAL_PATTERN),
            north_american: compile(NORTH_AMERICAN_PATTERN),
            cn_landline: compile(CN_LANDLINE_PATTERN),
        }
    }

    /// Masked text (borrowed when nothing was found) and what was masked.
    pub fn mask<'t>(&self, text: &'t str) -> (Cow<'t, str>, MaskCounts) {
        let mut counts = MaskCounts::default();
        if !may_contain_pii(text) {
            return (Cow::Borrowed(text), counts);
        }
        let mut current = Cow::Borrowed(text);
        // Repeat until a fixed point so that the result is idempotent even
        // when a placeholder turns a neighbour into a valid boundary.
        while let Some((next, found)) = self.mask_round(&current) {
            counts.add(found);
            current = Cow::Owned(next);
        }
        (current, counts)
    }

    /// One round over all kinds in order; `None` when nothing was found.
    fn mask_round(&self, text: &str) -> Option<(String, MaskCounts)> {
        const PASSES: [(PiiKind, Finder); 7] = [
            (PiiKind::Email, Masker::find_emails),
            (PiiKind::IdNumber, Masker::find_id_numbers),
            (PiiKind::BankCard, Masker::find_bank_cards),
            (PiiKind::Phone, Masker::find_cn_mobiles),
            (PiiKind::Phone, Masker::find_internationals),
            (PiiKind::Phone, Masker::find_north_americans),
            (PiiKind::Phone, Masker::find_cn_landlines),
        ];
        let mut counts = MaskCounts::default();
        let mut current = Cow::Borrowed(text);
        for (kind, find) in PASSES {
            let spans = find(self, &current);
            if !spans.is_empty() {
                counts.bump(kind, spans.len());
                current = Cow::Owned(replace_spans(&current, &spans, kind.placeholder()));
            }
        }
        match current {
            Cow::Owned(masked) => Some((masked, counts)),
            Cow::Borrowed(_) => None,
        }
    }

    fn find_emails(&self, text: &str) -> Vec<Range<usize>> {
        if !text.contains('@') {
            return Vec::new();
        }
        self.email.find_iter(text).map(|m| m.range()).collect()
    }

    fn find_id_numbers(&self, text: &str) -> Vec<Range<usize>> {
        scan(&self.id_number, text, |span| {
            (is_valid_id(&text[span.clone()]) && is_isolated(text, &span)).then_some(span)
        })
    }

    fn find_bank_cards(&self, text: &str) -> Vec<Range<usize>> {
        let mut spans = Vec::new();
        for run in self.digit_run.find_iter(text) {
            let groups = digit_groups(text, run.range());
            let mut first = 0;
            while first < groups.len() {
                match longest_card_from(text, &groups, first) {
                    Some(last) => {
                        spans.push(groups[first].start..groups[last].end);
                        first = last + 1;
                    }
                    None => first += 1,
                }
            }
        }
        spans
    }

    fn find_cn_mobiles(&self, text: &str) -> Vec<Range<usize>> {
        scan_isolated(&self.cn_mobile, text)
    }

    fn find_internationals(&self, text: &str) -> Vec<Range<usize>> {
        if !text.contains('+') {
            return Vec::new();
        }
        scan(&self.international, text, |span| {
            longest_international(text, span)
        })
    }

    fn find_north_americans(&self, text: &str) -> Vec<Range<usize>> {
        scan_isolated(&self.north_american, text)
    }

    fn find_cn_landlines(&self, text: &str) -> Vec<Range<usize>> {
        scan_isolated(&self.cn_landline, text)
    }
}

/// Cheap pre-check: every kind needs an ASCII digit or an `@`.
fn may_contain_pii(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit() || b == b'@')
}

/// Finds matches of `re`, letting `accept` keep, shorten or reject each one.
///
/// After a rejection the search resumes one character after the rejected
/// match's start, so a candidate hidden inside a rejected one is still found.
fn scan(
    re: &Regex,
    text: &str,
    mut accept: impl FnMut(Range<usize>) -> Option<Range<usize>>,
) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut pos = 0;
    while pos <= text.len() {
        let Some(found) = re.find_at(text, pos) else {
            break;
        };
        match accept(found.range()) {
            Some(span) if !span.is_empty() => {
                pos = span.end;
                spans.push(span);
            }
            _ => pos = next_char_start(text, found.start()),
        }
    }
    spans
}

/// [`scan`] keeping matches whose neighbours are boundaries.
fn scan_isolated(re: &Regex, text: &str) -> Vec<Range<usize>> {
    scan(re, text, |span| is_isolated(text, &span).then_some(span))
}

/// Byte offset of the character after the one starting at `at`.
fn next_char_start(text: &str, at: usize) -> usize {
    at + text[at..].chars().next().map_or(1, char::len_utf8)
}

/// Whether `span` stands alone: not part of a longer alphanumeric token and
/// not glued to another digit by a single `-` or `.`.
fn is_isolated(text: &str, span: &Range<usize>) -> bool {
    let mut before = text[..span.start].chars().rev();
    let mut after = text[span.end..].chars();
    is_boundary(before.next(), before.next()) && is_boundary(after.next(), after.next())
}

/// Whether `neighbour` (followed outwards by `beyond`) ends a token.
fn is_boundary(neighbour: Option<char>, beyond: Option<char>) -> bool {
    match neighbour {
        None => true,
        Some(c) if c.is_ascii_alphanumeric() => false,
        Some(c) if GLUE.contains(&c) => !beyond.is_some_and(|b| b.is_ascii_digit()),
        Some(_) => true,
    }
}

/// Replaces each span (sorted, non-overlapping) by `placeholder`.
fn replace_spans(text: &str, spans: &[Range<usize>], placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for span in spans {
        out.push_str(&text[last..span.start]);
        out.push_str(placeholder);
        last = span.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Values of the ASCII digits in `s`, other characters skipped.
fn digit_values(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// Number formed by ASCII digits (no overflow for the short fields used here).
fn ascii_number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |n, d| n * 10 + u32::from(d.wrapping_sub(b'0')))
}

// ---------------------------------------------------------------- ID numbers

/// Check character (`0`–`9` or `X`) for the first 17 ASCII digits of an ID.
fn id_check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    // The modulus keeps the index below 11.
    ID_CHECK_CHARS[(sum % 11) as usize]
}

/// Whether `candidate` is an 18-character ID with a valid checksum and date.
fn is_valid_id(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    bytes[17].to_ascii_uppercase() == id_check_char(&bytes[..17])
        && is_plausible_birth_date(&bytes[6..14])
}

/// `YYYYMMDD` with year 1900–2099, month 01–12 and day 01–31.
fn is_plausible_birth_date(date: &[u8]) -> bool {
    let year = ascii_number(&date[..4]);
    let month = ascii_number(&date[4..6]);
    let day = ascii_number(&date[6..8]);
    (1900..=2099).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

// ---------------------------------------------------------------- bank cards

/// Byte ranges of the digit groups inside a digit run.
fn digit_groups(text: &str, run: Range<usize>) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start = None;
    for (offset, byte) in text[run.clone()].bytes().enumerate() {
        let at = run.start + offset;
        match (byte.is_ascii_digit(), start) {
            (true, None) => start = Some(at),
            (false, Some(s)) => {
                groups.push(s..at);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        groups.push(s..run.end);
    }
    groups
}

/// Index of the last group of the longest card starting at group `first`.
fn longest_card_from(text: &str, groups: &[Range<usize>], first: usize) -> Option<usize> {
    let mut digits = 0;
    let mut lengths = Vec::new();
    let mut best = None;
    for (last, group) in groups.iter().enumerate().skip(first) {
        digits += group.len();
        lengths.push(group.len());
        if digits >= CARD_DIGITS.end {
            break;
        }
        if CARD_DIGITS.contains(&digits)
            && is_card_layout(&lengths)
            && is_card(text, groups[first].start..group.end)
        {
            best = Some(last);
        }
    }
    best
}

/// Whether digit groups are laid out as card numbers are printed: one
/// group, or 4-4-4-4 (+ up to 3), 4-4-4-3, 4-6-5 (Amex), 4-6-4 (Diners),
/// 6-12 / 6-13 (UnionPay). Lists of small numbers (`36 800 824 896 1024
/// 600`) that happen to pass Luhn are not cards.
fn is_card_layout(lengths: &[usize]) -> bool {
    matches!(
        lengths,
        [_] | [4, 4, 4, 4]
            | [4, 4, 4, 4, 1..=3]
            | [4, 4, 4, 3]
            | [4, 6, 5]
            | [4, 6, 4]
            | [6, 12]
            | [6, 13]
    )
}

/// Whether the digits in `span` form a card number standing alone.
fn is_card(text: &str, span: Range<usize>) -> bool {
    let digits = digit_values(&text[span.clone()]);
    digits.first() != Some(&0)
        && is_luhn_valid(&digits)
        && !is_isbn13(&digits)
        && !text[..span.start].ends_with('+')
        && is_isolated(text, &span)
}

/// Luhn checksum over digit values.
fn is_luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            match (i % 2 == 1, d * 2) {
                (false, _) => d,
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A valid ISBN-13 (`978`/`979` prefix, EAN-13 checksum): not a card.
fn is_isbn13(digits: &[u8]) -> bool {
    if digits.len() != 13 || !(digits.starts_with(&[9, 7, 8]) || digits.starts_with(&[9, 7, 9])) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| u32::from(d) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------- phones

/// Longest prefix of an international candidate that ends a digit group, has
/// 8–15 digits and stands alone.
fn longest_international(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut digits = 0;
    let mut best = None;
    for at in span.clone() {
        if !bytes[at].is_ascii_digit() {
            continue;
        }
        digits += 1;
        if digits >= INTERNATIONAL_DIGITS.end {
            break;
        }
        let end = at + 1;
        let ends_group = end == span.end || !matches!(bytes[end], b'0'..=b'9' | b')');
        let candidate = span.start..end;
        if ends_group && INTERNATIONAL_DIGITS.contains(&digits) && is_isolated(text, &candidate) {
            best = Some(candidate);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A valid ID number for 17 leading digits.
    fn make_id(first17: &str) -> String {
        assert_eq!(first17.len(), 17);
        let check = id_check_char(first17.as_bytes()) as char;
        format!("{first17}{check}")
    }

    /// `prefix` completed with its Luhn check digit.
    fn with_luhn(prefix: &str) -> String {
        (0..=9)
            .map(|d| format!("{prefix}{d}"))
            .find(|s| is_luhn_valid(&digit_values(s)))
            .expect("one check digit fits")
    }

    /// Masks with a fresh masker.
    fn mask(text: &str) -> (String, MaskCounts) {
        let (out, counts) = Masker::new().mask(text);
        (out.into_owned(), counts)
    }

    fn counts(email: u32, phone: u32, id_number: u32, bank_card: u32) -> MaskCounts {
        MaskCounts {
            email,
            phone,
            id_number,
            bank_card,
        }
    }

    /// Asserts that `text` comes back borrowed, unchanged, with zero counts.
    fn assert_untouched(masker: &Masker, text: &str) {
        let (out, found) = masker.mask(text);
        assert!(
            matches!(out, Cow::Borrowed(_)),
            "masked {text:?} -> {out:?}"
        );
        assert_eq!(out, text);
        assert_eq!(found, MaskCounts::default(), "{text:?}");
    }

    /// Asserts every `(input, expected)` pair masks exactly one `kind`.
    fn assert_single(kind: PiiKind, cases: &[(&str, &str)]) {
        let masker = Masker::new();
        for (input, expected) in cases {
            let (out, found) = masker.mask(input);
            assert_eq!(out, *expected, "input {input:?}");
            let mut want = MaskCounts::default();
            want.bump(kind, 1);
            assert_eq!(found, want, "input {input:?}");
        }
    }

    #[test]
    fn placeholders() {
        assert_eq!(PiiKind::Email.placeholder(), "[email]");
        assert_eq!(PiiKind::Phone.placeholder(), "[phone]");
        assert_eq!(PiiKind::IdNumber.placeholder(), "[id-number]");
        assert_eq!(PiiKind::BankCard.placeholder(), "[card]");
    }

    #[test]
    fn counts_total_and_add() {
        let mut a = counts(1, 2, 3, 4);
        assert_eq!(a.total(), 10);
        a.add(counts(1, 1, 0, 1));
        assert_eq!(a, counts(2, 3, 3, 5));
        assert_eq!(MaskCounts::default().total(), 0);
    }

    #[test]
    fn masker_is_send_sync_and_default() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Masker>();
        let (out, _) = Masker::default().mask("a@b.cn");
        assert_eq!(out, "[email]");
    }

    #[test]
    fn emails() {
        assert_single(
            PiiKind::Email,
            &[
                (
                    "Mail john.doe+crm@acme-corp.com today.",
                    "Mail [email] today.",
                ),
                ("邮箱zhang.wei@example.com。", "邮箱[email]。"),
                ("(alice.smith@acme.co.uk)", "([email])"),
                ("发到 13812345678@qq.com 就行", "发到 [email] 就行"),
                ("Contact:SALES@Huaxin-Tech.CN,", "Contact:[email],"),
            ],
        );
    }

    #[test]
    fn email_lookalikes_are_kept() {
        let masker = Masker::new();
        for text in ["root@localhost", "a@b.c", "@handle", "user@", "x@-y.com"] {
            assert_untouched(&masker, text);
        }
    }

    #[test]
    fn literal_sample_id_is_valid() {
        assert!(is_valid_id("11010519491231002X"));
        assert!(is_valid_id("11010519491231002x"));
        assert_eq!(make_id("11010519491231002"), "11010519491231002X");
    }

    #[test]
    fn id_numbers() {
        let id = make_id("44030419900307123");
        let input = format!("身份证号码：{id}，请核对。");
        assert_single(
            PiiKind::IdNumber,
            &[
                ("身份证号11010519491231002X", "身份证号[id-number]"),
                ("ID 11010519491231002x.", "ID [id-number]."),
                (input.as_str(), "身份证号码：[id-number]，请核对。"),
            ],
        );
    }

    #[test]
    fn invalid_ids_are_kept() {
        let masker = Masker::new();
        // Wrong check character (valid one is X), Luhn-invalid as well.
        assert!(!is_luhn_valid(&digit_values("110105194912310021")));
        assert_untouched(&masker, "编号 110105194912310021");
        // Valid checksum but impossible month 13.
        let bad_month = make_id("11010519491331002");
        assert!(!is_valid_id(&bad_month));
        if !is_luhn_valid(&digit_values(&bad_month)) {
            assert_untouched(&masker, &format!("编号 {bad_month}"));
        }
        // Year out of range.
        assert!(!is_valid_id(&make_id("11010518991231002")));
        // Old 15-digit numbers carry no checksum.
        assert_untouched(&masker, "旧身份证 110105491231002");
        // Glued to letters or longer digit runs.
        assert_untouched(&masker, "ID11010519491231002X");
        assert_untouched(&masker, "911010519491231002X");
    }

    #[test]
    fn valid_id_is_reported_as_id_not_card() {
        let id = (0..1000)
            .map(|seq| make_id(&format!("11010519800101{seq:03}")))
            .find(|id| id.bytes().all(|b| b.is_ascii_digit()) && is_luhn_valid(&digit_values(id)))
            .expect("some ID is also Luhn-valid");
        let (out, found) = mask(&format!("证件 {id} 已登记"));
        assert_eq!(out, "证件 [id-number] 已登记");
        assert_eq!(found, counts(0, 0, 1, 0));
    }

    #[test]
    fn bank_cards() {
        let unionpay19 = with_luhn("622202123456789012");
        let grouped19 = format!(
            "{}-{}-{}-{}-{}",
            &unionpay19[..4],
            &unionpay19[4..8],
            &unionpay19[8..12],
            &unionpay19[12..16],
            &unionpay19[16..]
        );
        let six_thirteen = format!("{} {}", &unionpay19[..6], &unionpay19[6..]);
        let in_chinese = format!("卡号{grouped19}，开户行招商银行");
        let spaced = format!("card {six_thirteen} ok");
        assert_single(
            PiiKind::BankCard,
            &[
                ("card 4111 1111 1111 1111", "card [card]"),
                ("Visa 4111-1111-1111-1111.", "Visa [card]."),
                ("卡号：4111111111111111。", "卡号：[card]。"),
                ("Amex 3782 822463 10005 exp", "Amex [card] exp"),
                ("订单 12 4111 1111 1111 1111", "订单 12 [card]"),
                (in_chinese.as_str(), "卡号[card]，开户行招商银行"),
                (spaced.as_str(), "card [card] ok"),
            ],
        );
    }

    #[test]
    fn card_lookalikes_are_kept() {
        let masker = Masker::new();
        for text in [
            "Order 4111111111111112 shipped", // Luhn-invalid
            "4111  1111 1111 1111",           // double space splits groups
            "41111111111111111111",           // 20 digits
            "ref4111111111111111",            // glued to letters
            "4111111111111111-7",             // part of a dashed token
            "0411111111111111116",            // leading zero
            // Luhn-valid, but a list of numbers, not a card layout (seen in
            // a real mailing-list e-mail: an X11 modeline).
            "Modeline \"800x600\" 36 800 824 896 1024 600 601 603 625",
            "ISBN 9787111547426 and 978-7-111-54742-6",
        ] {
            assert_untouched(&masker, text);
        }
        // A Luhn-valid ISBN-13 is still not a card.
        let isbn = (0..10)
            .map(|d| format!("978711154742{d}"))
            .find(|s| is_isbn13(&digit_values(s)))
            .expect("an ISBN check digit exists");
        if is_luhn_valid(&digit_values(&isbn)) {
            assert_untouched(&masker, &isbn);
        }
        let luhn_isbn = (0..1000)
            .map(|n| format!("9780000000{n:03}"))
            .find(|s| {
                let d = digit_values(s);
                is_isbn13(&d) && is_luhn_valid(&d)
            })
            .expect("some ISBN is Luhn-valid");
        assert_untouched(&masker, &format!("ISBN {luhn_isbn}"));
    }

    #[test]
    fn chinese_mobiles() {
        assert_single(
            PiiKind::Phone,
            &[
                ("手机13812345678，", "手机[phone]，"),
                ("Call 13812345678.", "Call [phone]."),
                ("电话 +8613912345678", "电话 [phone]"),
                ("电话 +86 139 1234 5678 找我", "电话 [phone] 找我"),
                ("电话 0086-15012345678", "电话 [phone]"),
                ("（手机：(+86)18612345678）", "（手机：[phone]）"),
                ("mobile: 86-13812345678", "mobile: [phone]"),
                ("手机：138-1234-5678；", "手机：[phone]；"),
                ("手机 138 1234 5678", "手机 [phone]"),
            ],
        );
    }

    #[test]
    fn chinese_landlines() {
        assert_single(
            PiiKind::Phone,
            &[
                ("座机010-12345678", "座机[phone]"),
                ("电话：0755-12345678转801", "电话：[phone]转801"),
                ("tel 0755 1234 5678.", "tel [phone]."),
                ("总机(010) 87654321。", "总机[phone]。"),
                ("ext 021-6234567-801 ok", "ext [phone] ok"),
            ],
        );
    }

    #[test]
    fn international_and_north_american_phones() {
        assert_single(
            PiiKind::Phone,
            &[
                ("London +44 20 7946 0958.", "London [phone]."),
                ("+1 (415) 555-0132", "[phone]"),
                ("Berlin: +49-30-901820", "Berlin: [phone]"),
                ("Paris +33 1 23 45 67 89", "Paris [phone]"),
                ("UK +44 (0)20 7946 0958", "UK [phone]"),
                ("office (415) 555-0132", "office [phone]"),
                ("cell 415-555-0132, thanks", "cell [phone], thanks"),
                ("cell 415.555.0132", "cell [phone]"),
                ("toll-free 1-800-555-0132", "toll-free [phone]"),
                ("美国办公室电话(415) 555-0132。", "美国办公室电话[phone]。"),
            ],
        );
    }

    #[test]
    fn phone_lookalikes_are_kept() {
        let masker = Masker::new();
        for text in [
            "813812345678999",
            "abc13812345678",
            "13812345678x",
            "1381234567",
            "+1 555 013",
            "call 555-0132",
            "01012345678",
        ] {
            assert_untouched(&masker, text);
        }
    }

    #[test]
    fn negatives_english() {
        let masker = Masker::new();
        for text in [
            "Meeting on 2024-05-01 at 10:30, or 20240501.",
            "Budget $12,500.00 (about ¥1,280,000), margin 35.5%, up 12%.",
            "Upgrade from 1.2.3 to v2.10.4; server 192.168.100.254.",
            "In 2024 we sold 42 units; order 4111111111111112 was refunded.",
            "Invoice INV-2024-000123, PO 110105194912310021.",
            "ISBN 978-7-111-54742-6, commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b.",
            "Hash 3b1f2e5d8a9c0b7e6f4a2d1c9e8b7a6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a",
        ] {
            assert_untouched(&masker, text);
        }
    }

    #[test]
    fn negatives_chinese() {
        let masker = Masker::new();
        for text in [
            "会议定于2024年5月1日10:30召开，报价¥1,280,000（含税）。",
            "合同金额1280000元，折扣15%，首付30%。",
            "版本v2.10.4已上线，服务器地址10.0.0.1。",
            "订单号HT20240501001，发票号 110105194912310021。",
            "编号813812345678999，年份2023，数量128。",
        ] {
            assert_untouched(&masker, text);
        }
    }

    #[test]
    fn chinese_sample() {
        let (out, found) = mask(
            "请联系我 13812345678 或发邮件到 li.na@huaxin-tech.cn，身份证号 11010519491231002X",
        );
        assert_eq!(
            out,
            "请联系我 [phone] 或发邮件到 [email]，身份证号 [id-number]"
        );
        assert_eq!(found, counts(1, 1, 1, 0));
    }

    #[test]
    fn english_sample() {
        let (out, found) = mask("Call me at +1 (415) 555-0132 or card 4111 1111 1111 1111");
        assert_eq!(out, "Call me at [phone] or card [card]");
        assert_eq!(found, counts(0, 1, 0, 1));
    }

    #[test]
    fn english_transcript() {
        let text = "[10:30] Alice: Budget is $12,500.00, roughly ¥1,280,000. \
                    Reach me at alice.smith@acme.co.uk or +44 20 7946 0958.\n\
                    [10:31] Bob: Sure, my cell is 415-555-0132, version 2.10.4 ships 2024-05-01.";
        let (out, found) = mask(text);
        assert_eq!(
            out,
            "[10:30] Alice: Budget is $12,500.00, roughly ¥1,280,000. \
             Reach me at [email] or [phone].\n\
             [10:31] Bob: Sure, my cell is [phone], version 2.10.4 ships 2024-05-01."
        );
        assert_eq!(found, counts(1, 2, 0, 0));
    }

    #[test]
    fn chinese_transcript() {
        let card = with_luhn("622202123456789012");
        let id = make_id("31010119851120321");
        let text = format!(
            "王总：我的手机是138-1234-5678，座机0755-12345678转801，邮箱wang.zong@example.com。\
             合同编号HT20240501001，金额1280000元，2024年5月1日前付款至卡号{card}，\
             身份证{id}。"
        );
        let (out, found) = mask(&text);
        assert_eq!(
            out,
            "王总：我的手机是[phone]，座机[phone]转801，邮箱[email]。\
             合同编号HT20240501001，金额1280000元，2024年5月1日前付款至卡号[card]，\
             身份证[id-number]。"
        );
        assert_eq!(found, counts(1, 2, 1, 1));
    }

    #[test]
    fn no_match_with_digits_is_borrowed() {
        let masker = Masker::new();
        assert_untouched(&masker, "Q3 revenue grew 12% to 4.5M");
        assert_untouched(&masker, "");
        assert_untouched(&masker, "纯中文文本，没有数字。");
    }

    #[test]
    fn placeholders_survive_a_second_pass() {
        let masker = Masker::new();
        assert_untouched(&masker, "[email] [phone] [id-number] [card]");
        // The e-mail ends in letters glued to a mobile: the mobile becomes
        // isolated once the e-mail is masked, in the same call.
        let (out, found) = masker.mask("a@b.co13812345678");
        assert_eq!(out, "[email][phone]");
        assert_eq!(found, counts(1, 1, 0, 0));
        assert_untouched(&masker, &out);
    }

    #[test]
    fn several_of_each_kind_are_counted() {
        let (out, found) = mask("13812345678/13912345678, a@x.cn; b@y.cn");
        assert_eq!(out, "[phone]/[phone], [email]; [email]");
        assert_eq!(found, counts(2, 2, 0, 0));
    }

    /// Letters, CJK, spaces and punctuation: no digit, no `@`.
    fn plain_text() -> impl Strategy<Value = String> {
        "[a-zA-Z\u{4e00}-\u{9fa5} ,.;:!?，。、！？（）()\\[\\]_+-]{0,80}"
    }

    /// A word of English letters or of CJK characters (no digits).
    fn word() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z]{1,8}", "[\u{4e00}-\u{9fa5}]{1,4}"]
    }

    fn words() -> impl Strategy<Value = String> {
        prop::collection::vec(word(), 0..6).prop_map(|w| w.join(" "))
    }

    /// A Luhn-valid 16-digit number not starting with 0.
    fn luhn16() -> impl Strategy<Value = String> {
        (1u8..=9, prop::collection::vec(0u8..=9, 14)).prop_map(|(first, rest)| {
            let body: String = std::iter::once(first)
                .chain(rest)
                .map(|d| char::from(b'0' + d))
                .collect();
            with_luhn(&body)
        })
    }

    /// A valid 18-character ID number.
    fn valid_id() -> impl Strategy<Value = String> {
        (
            110_000u32..=829_999,
            1900u32..=2099,
            1u32..=12,
            1u32..=31,
            0u32..=999,
        )
            .prop_map(|(region, year, month, day, seq)| {
                make_id(&format!("{region}{year}{month:02}{day:02}{seq:03}"))
            })
    }

    /// Strings dense in digits, separators and PII fragments.
    fn pii_dense() -> impl Strategy<Value = String> {
        let fragment = prop_oneof![
            "[0-9]{1,19}",
            "[0-9 +().@xX-]{1,6}",
            "[a-z]{1,4}",
            "[\u{4e00}-\u{4e10}]{1,2}",
            Just("[phone]".to_string()),
            Just("13812345678".to_string()),
            Just("a@b.co".to_string()),
            luhn16(),
            valid_id(),
        ];
        prop::collection::vec(fragment, 0..10).prop_map(|f| f.concat())
    }

    proptest! {
        #[test]
        fn text_without_digits_or_at_is_borrowed(text in plain_text()) {
            let (out, found) = Masker::new().mask(&text);
            prop_assert!(matches!(out, Cow::Borrowed(_)));
            prop_assert_eq!(out, text.as_str());
            prop_assert_eq!(found.total(), 0);
        }

        #[test]
        fn luhn_valid_card_between_words_is_masked(
            before in words(),
            after in words(),
            number in luhn16(),
            layout in 0usize..4,
        ) {
            let shown = match layout {
                0 => number.clone(),
                1 => format!("{} {} {} {}", &number[..4], &number[4..8], &number[8..12], &number[12..]),
                2 => format!("{}-{}-{}-{}", &number[..4], &number[4..8], &number[8..12], &number[12..]),
                _ => format!("卡号{number}，"),
            };
            let text = format!("{before} {shown} {after}");
            let (out, found) = Masker::new().mask(&text);
            prop_assert_eq!(found, counts(0, 0, 0, 1));
            prop_assert!(out.contains("[card]"));
            prop_assert!(!out.contains(&number));
            prop_assert!(!out.bytes().any(|b| b.is_ascii_digit()), "{}", out);
        }

        #[test]
        fn valid_id_in_chinese_text_is_masked(
            id in valid_id(),
            before in "[\u{4e00}-\u{9fa5}]{0,10}",
            after in "[\u{4e00}-\u{9fa5}]{0,10}",
            lower_x in any::<bool>(),
        ) {
            let id = if lower_x { id.to_lowercase() } else { id };
            let text = format!("{before}身份证号{id}，{after}");
            let (out, found) = Masker::new().mask(&text);
            prop_assert_eq!(found, counts(0, 0, 1, 0));
            prop_assert_eq!(out, format!("{before}身份证号[id-number]，{after}"));
        }

        #[test]
        fn masking_is_idempotent(text in prop_oneof![any::<String>(), pii_dense()]) {
            let masker = Masker::new();
            let (once, _) = masker.mask(&text);
            let (twice, found) = masker.mask(&once);
            prop_assert_eq!(&twice, &once);
            prop_assert_eq!(found.total(), 0);
        }

        #[test]
        fn arbitrary_unicode_never_panics(
            text in prop_oneof![
                any::<String>(),
                prop::collection::vec(prop_oneof!["\\PC{1,3}", "[0-9]{1,12}", "[ +@.()-]"], 0..20)
                    .prop_map(|p| p.concat()),
            ],
        ) {
            let (out, found) = Masker::new().mask(&text);
            if found.total() == 0 {
                prop_assert!(matches!(out, Cow::Borrowed(_)));
                prop_assert_eq!(out, text.as_str());
            } else {
                prop_assert!(matches!(out, Cow::Owned(_)));
            }
        }
    }
}
