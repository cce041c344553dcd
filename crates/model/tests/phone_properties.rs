//! Properties of phone-number normalization: every accepted number is E.164, normalizing is
//! idempotent, and the ways people write one number all give the same E.164 value.

use proptest::prelude::*;
use switchboard_model::phone::{CountryCode, E164, MAX_DIGITS, MIN_DIGITS, normalize};

/// A valid E.164 digit string (no `+`).
fn e164_digits() -> impl Strategy<Value = String> {
    (
        1u8..=9,
        proptest::collection::vec(0u8..=9, (MIN_DIGITS - 1)..MAX_DIGITS),
    )
        .prop_map(|(first, rest)| {
            std::iter::once(first)
                .chain(rest)
                .map(|d| char::from(b'0' + d))
                .collect()
        })
}

fn to_script(digits: &str, base: u32) -> String {
    digits
        .chars()
        .map(|c| char::from_u32(base + c.to_digit(10).expect("digit")).expect("char"))
        .collect()
}

/// Puts a separator after some digits.
fn decorate(digits: &str, seps: &[usize]) -> String {
    const SEP: [&str; 6] = [" ", "-", ".", "/", "\u{200F}", "\u{00A0}"];
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        out.push(c);
        if let Some(s) = seps.get(i) {
            out.push_str(SEP[s % SEP.len()]);
        }
    }
    out
}

proptest! {
    #[test]
    fn accepted_numbers_are_e164(s in "\\PC{0,40}", cc in proptest::option::of(1u16..=999)) {
        let cc = cc.and_then(|c| c.to_string().parse::<CountryCode>().ok());
        if let Ok(p) = normalize(&s, cc) {
            let d = p.digits();
            prop_assert!(p.as_str().starts_with('+'));
            prop_assert!((MIN_DIGITS..=MAX_DIGITS).contains(&d.len()));
            prop_assert!(d.bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(!d.starts_with('0'));
            prop_assert!(p.as_str().parse::<E164>().is_ok());
        }
    }

    #[test]
    fn normalizing_is_idempotent(d in e164_digits()) {
        let p = normalize(&format!("+{d}"), None).expect("valid");
        prop_assert_eq!(p.as_str(), format!("+{d}"));
        prop_assert_eq!(normalize(p.as_str(), None).expect("again"), p);
    }

    #[test]
    fn every_written_form_gives_the_same_number(
        d in e164_digits(),
        seps in proptest::collection::vec(0usize..12, 0..15),
    ) {
        let want = format!("+{d}");
        let forms = [
            format!("+{}", decorate(&d, &seps)),
            format!("00{}", decorate(&d, &seps)),
            format!("tel:+{}", decorate(&d, &seps)),
            format!("sip:+{d}@example.com;user=phone"),
            format!("whatsapp:+{d}"),
            format!("+{}", to_script(&d, 0x0660)),
            format!("00{}", to_script(&d, 0x06F0)),
            format!("  \u{200E}+{}  ", decorate(&to_script(&d, 0x06F0), &seps)),
        ];
        for f in forms {
            prop_assert_eq!(normalize(&f, None).map(String::from), Ok(want.clone()), "form {:?}", f);
        }
    }

    #[test]
    fn national_numbers_take_the_default_country(national in "[1-9][0-9]{6,9}") {
        let uk: CountryCode = "44".parse().expect("cc");
        let p = normalize(&format!("0{national}"), Some(uk)).expect("valid");
        prop_assert_eq!(p.as_str(), format!("+44{national}"));
        prop_assert_eq!(normalize(&national, Some(uk)).expect("valid"), p);
    }
}
