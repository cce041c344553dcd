//! Texts in several languages and `{{name}}` attribute substitution.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A text with variants per language (`en`, `ar`, `fa`, ...). In JSON either a plain string
/// (taken as English) or an object `{"en": "...", "ar": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Text {
    /// One text for every language.
    Plain(String),
    /// A text per language code.
    Langs(BTreeMap<String, String>),
}

impl Text {
    /// The variant for `lang`, else English, else any; `""` when there is none.
    pub fn get(&self, lang: &str) -> &str {
        match self {
            Text::Plain(s) => s,
            Text::Langs(m) => m
                .get(lang)
                .or_else(|| m.get("en"))
                .or_else(|| m.values().next())
                .map(String::as_str)
                .unwrap_or(""),
        }
    }

    /// The language actually used for `lang` (the fallback's, if `lang` has no variant).
    pub fn lang_of<'a>(&'a self, lang: &'a str) -> &'a str {
        match self {
            Text::Plain(_) => lang,
            Text::Langs(m) if m.contains_key(lang) => lang,
            Text::Langs(m) if m.contains_key("en") => "en",
            Text::Langs(m) => m.keys().next().map(String::as_str).unwrap_or(lang),
        }
    }

    /// Every variant (for matching a typed answer in any language).
    pub fn variants(&self) -> Vec<&str> {
        match self {
            Text::Plain(s) => vec![s.as_str()],
            Text::Langs(m) => m.values().map(String::as_str).collect(),
        }
    }

    /// A text from `(lang, text)` pairs.
    pub fn of(pairs: &[(&str, &str)]) -> Text {
        Text::Langs(
            pairs
                .iter()
                .map(|(l, t)| ((*l).to_owned(), (*t).to_owned()))
                .collect(),
        )
    }
}

/// Replaces each `{{name}}` in `template` with the attribute `name` (strings as they are,
/// other JSON values in their JSON form, a missing one with nothing). Whitespace inside the
/// braces is ignored; an unclosed `{{` is kept as it is.
pub fn substitute(template: &str, attributes: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match attributes.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => {}
            Some(v) => out.push_str(&v.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `t` in `lang` with `{{name}}`s substituted from `attributes`, and the language it is in (the
/// fallback's when `t` has no variant for `lang`: what a voice must speak it in).
pub fn render(t: &Text, lang: &str, attributes: &Map<String, Value>) -> (String, String) {
    (
        substitute(t.get(lang), attributes),
        t.lang_of(lang).to_owned(),
    )
}

/// The built-in text a caller hears when its call back cannot be registered: its number is
/// unknown (en/ar/fa).
pub fn callback_no_number() -> Text {
    builtin::callback_no_number()
}

/// Built-in texts of the in-queue announcements and offers, in en/ar/fa; a `queue` node may
/// replace each.
pub(crate) mod builtin {
    use super::Text;

    pub fn position() -> Text {
        Text::of(&[
            (
                "en",
                "You are number {{position}} in the queue. Estimated wait: {{wait}}.",
            ),
            (
                "ar",
                "ترتيبك في قائمة الانتظار هو {{position}}. مدة الانتظار المتوقعة: {{wait}}.",
            ),
            (
                "fa",
                "شما نفر {{position}} در صف هستید. زمان انتظار تخمینی: {{wait}}.",
            ),
        ])
    }

    pub fn long_wait() -> Text {
        Text::of(&[
            (
                "en",
                "Sorry for the wait. You can keep waiting, or choose another way:",
            ),
            (
                "ar",
                "نعتذر عن الانتظار. يمكنك الاستمرار في الانتظار أو اختيار طريقة أخرى:",
            ),
            (
                "fa",
                "بابت انتظار پوزش می‌خواهیم. می‌توانید منتظر بمانید یا راه دیگری را انتخاب کنید:",
            ),
        ])
    }

    pub fn self_service() -> Text {
        Text::of(&[
            ("en", "Help center"),
            ("ar", "مركز المساعدة"),
            ("fa", "مرکز راهنما"),
        ])
    }

    pub fn self_service_link() -> Text {
        Text::of(&[
            ("en", "Our help center: {{url}}"),
            ("ar", "مركز المساعدة لدينا: {{url}}"),
            ("fa", "مرکز راهنمای ما: {{url}}"),
        ])
    }

    pub fn follow_up() -> Text {
        Text::of(&[
            ("en", "Answer me by email"),
            ("ar", "أجيبوني بالبريد الإلكتروني"),
            ("fa", "با ایمیل پاسخ دهید"),
        ])
    }

    pub fn keep_waiting() -> Text {
        Text::of(&[
            ("en", "Keep waiting"),
            ("ar", "سأنتظر"),
            ("fa", "منتظر می‌مانم"),
        ])
    }

    pub fn callback() -> Text {
        Text::of(&[
            ("en", "Call me back"),
            ("ar", "اتصلوا بي"),
            ("fa", "با من تماس بگیرید"),
        ])
    }

    pub fn callback_offer() -> Text {
        Text::of(&[
            ("en", "To be called back instead of waiting, press {{key}}."),
            ("ar", "لكي نتصل بك بدلاً من الانتظار، اضغط {{key}}."),
            (
                "fa",
                "برای اینکه به جای انتظار با شما تماس بگیریم، {{key}} را فشار دهید.",
            ),
        ])
    }

    pub fn callback_confirm() -> Text {
        Text::of(&[
            ("en", "Thank you. We will call you back at {{number}}."),
            ("ar", "شكراً لك. سنتصل بك على الرقم {{number}}."),
            (
                "fa",
                "سپاسگزاریم. با شماره {{number}} با شما تماس خواهیم گرفت.",
            ),
        ])
    }

    pub fn callback_no_number() -> Text {
        Text::of(&[
            (
                "en",
                "Sorry, we cannot call you back: your number is unknown.",
            ),
            ("ar", "عذراً، لا يمكننا الاتصال بك: رقمك غير معروف."),
            (
                "fa",
                "متأسفیم، نمی‌توانیم با شما تماس بگیریم: شماره شما معلوم نیست.",
            ),
        ])
    }

    pub fn ask_email() -> Text {
        Text::of(&[
            ("en", "Please type your email address."),
            ("ar", "يرجى كتابة عنوان بريدك الإلكتروني."),
            ("fa", "لطفاً نشانی ایمیل خود را بنویسید."),
        ])
    }

    pub fn bad_email() -> Text {
        Text::of(&[
            (
                "en",
                "That does not look like an email address. Please try again.",
            ),
            ("ar", "لا يبدو هذا عنوان بريد إلكتروني. حاول مرة أخرى."),
            ("fa", "این نشانی ایمیل به نظر نمی‌رسد. دوباره امتحان کنید."),
        ])
    }

    pub fn follow_up_done() -> Text {
        Text::of(&[
            ("en", "Thank you. We will answer you by email at {{email}}."),
            ("ar", "شكراً لك. سنرد عليك بالبريد الإلكتروني على {{email}}."),
            ("fa", "سپاسگزاریم. به {{email}} با ایمیل پاسخ خواهیم داد."),
        ])
    }

    pub fn invalid_choice() -> Text {
        Text::of(&[
            ("en", "Sorry, that is not one of the choices."),
            ("ar", "عذراً، هذا ليس أحد الخيارات."),
            ("fa", "متأسفیم، این یکی از گزینه‌ها نیست."),
        ])
    }

    /// `wait` in words: "under a minute", "about N minutes".
    pub fn wait(secs: u64, lang: &str) -> String {
        let mins = secs.div_ceil(60);
        match (lang, mins) {
            ("ar", 0 | 1) => "أقل من دقيقة".into(),
            ("ar", m) => format!("حوالي {m} دقائق"),
            ("fa", 0 | 1) => "کمتر از یک دقیقه".into(),
            ("fa", m) => format!("حدود {m} دقیقه"),
            (_, 0 | 1) => "under a minute".into(),
            (_, m) => format!("about {m} minutes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitution_fills_known_names_and_drops_unknown_ones() {
        let attrs = json!({"name": "Ana", "n": 3, "vip": true});
        let attrs = attrs.as_object().expect("object");
        assert_eq!(
            substitute("Hi {{name}}, #{{ n }} {{vip}}{{missing}}!", attrs),
            "Hi Ana, #3 true!"
        );
        assert_eq!(substitute("open {{ end", attrs), "open {{ end");
        assert_eq!(substitute("", attrs), "");
    }

    #[test]
    fn text_falls_back_to_english_then_any() {
        let t = Text::of(&[("en", "Hello"), ("fa", "سلام")]);
        assert_eq!(t.get("fa"), "سلام");
        assert_eq!(t.get("ar"), "Hello");
        assert_eq!(t.lang_of("ar"), "en");
        let only = Text::of(&[("ar", "مرحبا")]);
        assert_eq!(only.get("en"), "مرحبا");
        let plain: Text = serde_json::from_str("\"Hi\"").expect("plain");
        assert_eq!(plain.get("fa"), "Hi");
    }
}
