//! Phone numbers as E.164 values (ITU-T E.164: `+`, a country code that does not start with 0,
//! at most 15 digits in all), shared by every channel: SIP caller ids, SMS and WhatsApp senders,
//! contact points typed by agents.
//!
//! [`normalize`] accepts what people and providers actually send: `+…` and `00…` international
//! forms, national numbers (with a configured default country code and its trunk prefix), `tel:`
//! and `sip:`/`sips:` URIs (the user part), `whatsapp:` addresses, spaces, dashes, dots,
//! slashes, parentheses, bidirectional marks from right-to-left text, and Arabic-Indic and
//! Persian (Extended Arabic-Indic) digits. Anything else is refused with a [`PhoneError`] that
//! names the problem but never repeats the number (it is personal data).
//!
//! Deliberately not here: per-country numbering plans (whether a number is *assigned*); that
//! needs libphonenumber's metadata. This module only makes equal numbers compare equal.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Fewest digits accepted (country code plus subscriber number; Saint Helena has `+290 1234`).
pub const MIN_DIGITS: usize = 7;
/// Most digits E.164 allows (country code included).
pub const MAX_DIGITS: usize = 15;

/// A phone number in E.164 form: `+` then 7–15 digits, the first not `0`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    /// The number as text, like `+15551234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The digits without the `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

// Phone numbers are personal data: `Debug` redacts all but the country-code-ish first digits.
impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164(+{}…)", &self.0[1..2])
    }
}

impl fmt::Display for E164 {
    /// The plain E.164 text: use `Sensitive<E164>` where it might reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<E164> for String {
    fn from(e: E164) -> String {
        e.0
    }
}

impl TryFrom<String> for E164 {
    type Error = PhoneError;
    /// Only the exact E.164 form (use [`normalize`] for anything people type).
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for E164 {
    type Err = PhoneError;
    /// Only the exact E.164 form (use [`normalize`] for anything people type).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('+').ok_or(PhoneError::NoCountryCode)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::BadCharacter);
        }
        check_digits(digits)?;
        Ok(E164(s.to_owned()))
    }
}

/// A country calling code (1–3 digits, not starting with 0), used for national numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode(u16);

impl CountryCode {
    /// The code as a number (`1`, `44`, `971`).
    pub fn get(self) -> u16 {
        self.0
    }
    /// The national trunk prefix dialled before national numbers: `1` in the North American
    /// plan, none in a few plans that dropped it, `0` elsewhere (the common case).
    fn trunk_prefix(self) -> Option<char> {
        match self.0 {
            1 => Some('1'),
            // Italy keeps the leading 0 as part of the number; Spain, Norway, Denmark, Portugal,
            // Greece, Luxembourg, Iceland, Malta and a few others have no trunk prefix.
            39 | 34 | 47 | 45 | 351 | 30 | 352 | 354 | 356 | 357 | 372 | 371 | 298 | 299 => None,
            _ => Some('0'),
        }
    }
}

impl FromStr for CountryCode {
    type Err = PhoneError;
    /// `1`, `+44`, `971`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = s.trim();
        let d = d.strip_prefix('+').unwrap_or(d);
        if d.is_empty()
            || d.len() > 3
            || !d.bytes().all(|b| b.is_ascii_digit())
            || d.starts_with('0')
        {
            return Err(PhoneError::BadCountryCode);
        }
        d.parse()
            .map(CountryCode)
            .map_err(|_| PhoneError::BadCountryCode)
    }
}

/// Why a text is not a phone number. The messages never repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneError {
    /// Nothing but spaces and separators.
    Empty,
    /// A letter or symbol that is not a digit or an accepted separator.
    BadCharacter,
    /// `+` somewhere other than the start.
    MisplacedPlus,
    /// A national number, and no default country code is configured.
    NoCountryCode,
    /// The country code starts with 0.
    BadCountryCode,
    /// Fewer than [`MIN_DIGITS`] digits.
    TooShort,
    /// More than [`MAX_DIGITS`] digits.
    TooLong,
    /// A `sip:`/`tel:` URI without a user part.
    NoUserPart,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhoneError::Empty => "the phone number is empty",
            PhoneError::BadCharacter => {
                "a phone number has only digits, a leading +, spaces, dashes, dots and parentheses"
            }
            PhoneError::MisplacedPlus => "+ may only start a phone number",
            PhoneError::NoCountryCode => {
                "the number has no country code (+… or 00…) and no default country code is set"
            }
            PhoneError::BadCountryCode => "a country code has 1-3 digits and does not start with 0",
            PhoneError::TooShort => "too few digits for an international phone number",
            PhoneError::TooLong => "more than 15 digits: not an E.164 phone number",
            PhoneError::NoUserPart => "the URI has no number in its user part",
        })
    }
}

impl std::error::Error for PhoneError {}

fn check_digits(d: &str) -> Result<(), PhoneError> {
    if d.starts_with('0') {
        return Err(PhoneError::BadCountryCode);
    }
    if d.len() < MIN_DIGITS {
        return Err(PhoneError::TooShort);
    }
    if d.len() > MAX_DIGITS {
        return Err(PhoneError::TooLong);
    }
    Ok(())
}

/// The ASCII digit of an ASCII, Arabic-Indic (U+0660..) or Persian (U+06F0..) digit.
fn digit(c: char) -> Option<char> {
    let base = match c {
        '0'..='9' => return Some(c),
        '\u{0660}'..='\u{0669}' => 0x0660,
        '\u{06F0}'..='\u{06F9}' => 0x06F0,
        '\u{FF10}'..='\u{FF19}' => 0xFF10, // fullwidth, from East Asian input methods
        _ => return None,
    };
    char::from_digit(c as u32 - base, 10)
}

/// Visual separators people put in numbers, and the invisible direction marks RTL text adds.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '-'
            | '.'
            | '/'
            | '('
            | ')'
            | '\u{00A0}'
            | '\u{2010}'..='\u{2015}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202F}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061C}'
    )
}

/// The number part of a `tel:`, `sip:`, `sips:` or `whatsapp:` text, or the text itself.
fn strip_uri(s: &str) -> Result<&str, PhoneError> {
    let lower_starts = |p: &str| {
        s.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    };
    if lower_starts("tel:") || lower_starts("whatsapp:") {
        let rest = &s[s.find(':').map_or(0, |i| i + 1)..];
        // RFC 3966: parameters (`;ext=`, `;phone-context=`) follow the number.
        let number = rest.split(';').next().unwrap_or_default();
        return if number.trim().is_empty() {
            Err(PhoneError::NoUserPart)
        } else {
            Ok(number)
        };
    }
    if lower_starts("sip:") || lower_starts("sips:") {
        let rest = &s[s.find(':').map_or(0, |i| i + 1)..];
        // RFC 3261 19.1.1: user[:password]@host; user parameters follow `;`.
        let Some((user, _host)) = rest.split_once('@') else {
            return Err(PhoneError::NoUserPart);
        };
        let user = user.split([':', ';']).next().unwrap_or_default();
        return if user.trim().is_empty() {
            Err(PhoneError::NoUserPart)
        } else {
            Ok(user)
        };
    }
    Ok(s)
}

/// Normalizes a phone number to E.164. National numbers (no `+`, no `00`) take
/// `default_country` after dropping its trunk prefix; without one they are refused.
pub fn normalize(input: &str, default_country: Option<CountryCode>) -> Result<E164, PhoneError> {
    let text = strip_uri(input.trim())?;
    let mut plus = false;
    let mut digits = String::with_capacity(16);
    for c in text.chars() {
        if let Some(d) = digit(c) {
            digits.push(d);
        } else if c == '+' {
            if plus || !digits.is_empty() {
                return Err(PhoneError::MisplacedPlus);
            }
            plus = true;
        } else if !is_separator(c) {
            return Err(PhoneError::BadCharacter);
        }
        if digits.len() > 2 * MAX_DIGITS {
            return Err(PhoneError::TooLong);
        }
    }
    if digits.is_empty() {
        return Err(if plus {
            PhoneError::TooShort
        } else {
            PhoneError::Empty
        });
    }
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else {
        let cc = default_country.ok_or(PhoneError::NoCountryCode)?;
        let national = match cc.trunk_prefix() {
            Some(p) => digits.strip_prefix(p).unwrap_or(&digits),
            None => &digits,
        };
        if national.is_empty() {
            return Err(PhoneError::TooShort);
        }
        format!("{}{national}", cc.get())
    };
    check_digits(&international)?;
    Ok(E164(format!("+{international}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> Option<CountryCode> {
        Some(s.parse().expect("country code"))
    }

    fn n(s: &str, c: Option<CountryCode>) -> Result<String, PhoneError> {
        normalize(s, c).map(String::from)
    }

    #[test]
    fn international_forms() {
        assert_eq!(n("+1 (555) 123-4567", None), Ok("+15551234567".into()));
        assert_eq!(n("0044 20 7946 0958", None), Ok("+442079460958".into()));
        assert_eq!(n("+44.20.7946.0958", None), Ok("+442079460958".into()));
        assert_eq!(n("  +49/30/1234567 ", None), Ok("+49301234567".into()));
    }

    #[test]
    fn national_numbers_use_the_default_country() {
        assert_eq!(n("020 7946 0958", cc("44")), Ok("+442079460958".into()));
        assert_eq!(n("(555) 123-4567", cc("+1")), Ok("+15551234567".into()));
        assert_eq!(n("1 555 123 4567", cc("1")), Ok("+15551234567".into()));
        assert_eq!(n("050 123 4567", cc("971")), Ok("+971501234567".into()));
        // Italy keeps its leading 0.
        assert_eq!(n("06 1234 5678", cc("39")), Ok("+390612345678".into()));
        assert_eq!(n("020 7946 0958", None), Err(PhoneError::NoCountryCode));
    }

    #[test]
    fn uris_and_provider_addresses() {
        assert_eq!(n("tel:+1-555-123-4567", None), Ok("+15551234567".into()));
        assert_eq!(
            n("tel:+1-555-123-4567;ext=22", None),
            Ok("+15551234567".into())
        );
        assert_eq!(
            n("sip:+15551234567@trunk.example.com;user=phone", None),
            Ok("+15551234567".into())
        );
        assert_eq!(
            n("SIPS:0044207946095:pw@host", None),
            Ok("+44207946095".into())
        );
        assert_eq!(n("whatsapp:+15551234567", None), Ok("+15551234567".into()));
        assert_eq!(
            n("sip:trunk.example.com", None),
            Err(PhoneError::NoUserPart)
        );
        assert_eq!(n("sip:@host", None), Err(PhoneError::NoUserPart));
        assert_eq!(n("tel:", None), Err(PhoneError::NoUserPart));
    }

    #[test]
    fn arabic_indic_and_persian_digits() {
        assert_eq!(n("+٩٧١ ٥٠ ١٢٣ ٤٥٦٧", None), Ok("+971501234567".into()));
        assert_eq!(n("۰۹۱۲ ۳۴۵ ۶۷۸۹", cc("98")), Ok("+989123456789".into()));
        // Direction marks around a number pasted from right-to-left text.
        assert_eq!(
            n("\u{200F}+98 912 345 6789\u{200E}", None),
            Ok("+989123456789".into())
        );
    }

    #[test]
    fn junk_is_refused_with_a_reason() {
        assert_eq!(n("", None), Err(PhoneError::Empty));
        assert_eq!(n(" - ", None), Err(PhoneError::Empty));
        assert_eq!(n("+", None), Err(PhoneError::TooShort));
        assert_eq!(n("1-800-FLOWERS", cc("1")), Err(PhoneError::BadCharacter));
        assert_eq!(n("+1 555 +1234567", None), Err(PhoneError::MisplacedPlus));
        assert_eq!(n("+0123456789", None), Err(PhoneError::BadCountryCode));
        assert_eq!(n("+12345", None), Err(PhoneError::TooShort));
        assert_eq!(n("+1234567890123456", None), Err(PhoneError::TooLong));
        assert_eq!(n("alice@example.com", None), Err(PhoneError::BadCharacter));
        assert!("0".parse::<CountryCode>().is_err());
        assert!("1234".parse::<CountryCode>().is_err());
        assert!("x".parse::<CountryCode>().is_err());
    }

    #[test]
    fn errors_and_debug_never_show_the_number() {
        let e = normalize("+1 555 +1234567", None).expect_err("misplaced");
        assert!(!e.to_string().contains("555"));
        let p = normalize("+15551234567", None).expect("valid");
        assert!(!format!("{p:?}").contains("555"));
    }

    #[test]
    fn exact_parse_and_serde() {
        let p: E164 = "+15551234567".parse().expect("valid");
        assert_eq!(p.digits(), "15551234567");
        assert!("15551234567".parse::<E164>().is_err());
        assert!("+1 555 1234567".parse::<E164>().is_err());
        let j = serde_json::to_string(&p).expect("ser");
        assert_eq!(j, "\"+15551234567\"");
        let back: E164 = serde_json::from_str(&j).expect("de");
        assert_eq!(back, p);
        assert!(serde_json::from_str::<E164>("\"555\"").is_err());
    }
}
