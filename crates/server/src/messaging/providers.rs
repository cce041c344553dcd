//! The providers' wire formats, as published: webhook signatures, webhook payloads turned into
//! [`Inbound`] items, and outbound sends turned into a [`ProviderRequest`] and back. Pure
//! functions (no I/O), so each format is unit-tested here and end-to-end against fakes.
//!
//! - Twilio: form-encoded webhooks signed with `X-Twilio-Signature` (base64 HMAC-SHA1 over the
//!   full URL followed by every POST parameter name and value, sorted by name); sends to
//!   `/2010-04-01/Accounts/{sid}/Messages.json` with HTTP basic auth.
//! - Generic HTTP gateway: JSON both ways, `X-Switchboard-Signature: sha256=<hex>` (HMAC-SHA256
//!   of the raw body) both ways.
//! - WhatsApp Cloud API: `X-Hub-Signature-256: sha256=<hex>` HMAC-SHA256 of the raw body with
//!   the app secret; `entry[].changes[].value.messages[]` and `.statuses[]`; sends to
//!   `/{version}/{phone-number-id}/messages` with a bearer token.
//! - Telegram Bot API: `X-Telegram-Bot-Api-Secret-Token`; `Update.message`; `sendMessage`.
//! - Messenger and Instagram: `X-Hub-Signature-256`; `entry[].messaging[]` with messages,
//!   delivery and read; sends to `/{version}/me/messages` with `messaging_type: RESPONSE`.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use switchboard_model::Channel;
use switchboard_model::phone::{CountryCode, normalize};

/// A messaging provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Twilio's Programmable Messaging API (or a compatible one).
    Twilio,
    /// A generic HTTP SMS gateway speaking JSON.
    HttpSms,
    /// WhatsApp Cloud API (Meta).
    Whatsapp,
    /// Telegram Bot API.
    Telegram,
    /// Facebook Messenger (Meta).
    Messenger,
    /// Instagram direct messages (Meta).
    Instagram,
    /// Email: an address this server receives mail for by SMTP and answers through the relay
    /// (crate::email). No webhooks.
    Email,
}

/// Meta Graph API version used unless the account's `api_version` says otherwise.
pub const GRAPH_VERSION: &str = "v21.0";

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 7] = [
        Provider::Twilio,
        Provider::HttpSms,
        Provider::Whatsapp,
        Provider::Telegram,
        Provider::Messenger,
        Provider::Instagram,
        Provider::Email,
    ];

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::HttpSms => "http_sms",
            Provider::Whatsapp => "whatsapp",
            Provider::Telegram => "telegram",
            Provider::Messenger => "messenger",
            Provider::Instagram => "instagram",
            Provider::Email => "email",
        }
    }

    /// The provider of an API name.
    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The channel its conversations are.
    pub fn channel(self) -> Channel {
        match self {
            Provider::Twilio | Provider::HttpSms => Channel::Sms,
            Provider::Whatsapp => Channel::Whatsapp,
            Provider::Telegram => Channel::Telegram,
            Provider::Messenger => Channel::Messenger,
            Provider::Instagram => Channel::Instagram,
            Provider::Email => Channel::Email,
        }
    }

    /// The kind of contact point its customers are known by.
    pub fn contact_kind(self) -> &'static str {
        match self {
            Provider::Twilio | Provider::HttpSms | Provider::Whatsapp => "phone",
            Provider::Telegram => "telegram",
            Provider::Messenger => "messenger",
            Provider::Instagram => "instagram",
            Provider::Email => "email",
        }
    }

    /// The public API base URL.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Provider::Twilio => Some("https://api.twilio.com"),
            Provider::HttpSms => None,
            Provider::Whatsapp | Provider::Messenger | Provider::Instagram => {
                Some("https://graph.facebook.com")
            }
            Provider::Telegram => Some("https://api.telegram.org"),
            // Mail goes out through the relay (SWITCHBOARD_SMTP_RELAY).
            Provider::Email => Some(""),
        }
    }

    /// Settings an account must have.
    pub fn required_settings(self) -> &'static [&'static str] {
        match self {
            Provider::Twilio => &["account_sid", "from"],
            Provider::HttpSms => &["from"],
            Provider::Whatsapp => &["phone_number_id"],
            Provider::Telegram => &[],
            Provider::Messenger | Provider::Instagram => &["page_id"],
            Provider::Email => &["address"],
        }
    }

    /// Settings an account may have besides the required ones.
    pub fn optional_settings(self) -> &'static [&'static str] {
        match self {
            Provider::Whatsapp | Provider::Messenger | Provider::Instagram => &["api_version"],
            Provider::Email => &["display_name", "ack_text", "response_time"],
            _ => &[],
        }
    }

    /// Secrets an account must have.
    pub fn required_secrets(self) -> &'static [&'static str] {
        match self {
            Provider::Twilio => &["auth_token"],
            Provider::HttpSms => &["hmac_secret"],
            Provider::Whatsapp => &["access_token", "app_secret", "verify_token"],
            Provider::Telegram => &["bot_token", "secret_token"],
            Provider::Messenger | Provider::Instagram => {
                &["page_access_token", "app_secret", "verify_token"]
            }
            Provider::Email => &[],
        }
    }

    /// Secrets an account may have besides the required ones.
    pub fn optional_secrets(self) -> &'static [&'static str] {
        match self {
            Provider::HttpSms => &["api_key"],
            _ => &[],
        }
    }

    /// Whether free text may be sent only within 24 hours of the customer's last message.
    pub fn has_service_window(self) -> bool {
        matches!(
            self,
            Provider::Whatsapp | Provider::Messenger | Provider::Instagram
        )
    }
}

/// What an account's settings and secrets are, for the functions here.
#[derive(Debug, Clone)]
pub struct AccountInfo<'a> {
    /// Provider.
    pub provider: Provider,
    /// API base URL without a trailing `/`.
    pub base_url: &'a str,
    /// Settings (JSON object).
    pub settings: &'a Value,
    /// Secrets (JSON object).
    pub secrets: &'a Value,
}

impl AccountInfo<'_> {
    fn setting(&self, k: &str) -> &str {
        self.settings[k].as_str().unwrap_or_default()
    }
    fn secret(&self, k: &str) -> &str {
        self.secrets[k].as_str().unwrap_or_default()
    }
    fn graph_version(&self) -> &str {
        self.settings["api_version"]
            .as_str()
            .unwrap_or(GRAPH_VERSION)
    }
}

// ----- signatures -----

/// HMAC-SHA256 of `body` with `key`, as lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC takes keys of any length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a `sha256=<hex>` header (Meta's `X-Hub-Signature-256`, our gateway's header).
pub fn check_sha256_header(header: Option<&str>, key: &str, body: &[u8]) -> bool {
    let Some(given) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    !key.is_empty()
        && constant_time_eq(
            given.to_ascii_lowercase().as_bytes(),
            hmac_sha256_hex(key.as_bytes(), body).as_bytes(),
        )
}

/// Twilio's request signature: base64 HMAC-SHA1 (auth token) of the full URL followed by each
/// POST parameter's name and value, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The headers of a webhook that the checks read.
#[derive(Debug, Default, Clone)]
pub struct HookHeaders<'a> {
    /// `X-Twilio-Signature`.
    pub twilio: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub hub: Option<&'a str>,
    /// `X-Telegram-Bot-Api-Secret-Token`.
    pub telegram: Option<&'a str>,
    /// `X-Switchboard-Signature`.
    pub gateway: Option<&'a str>,
}

/// Whether a webhook is signed by the provider. `url` is the full URL the provider called
/// (Twilio signs it).
pub fn verify(a: &AccountInfo<'_>, h: &HookHeaders<'_>, url: &str, body: &[u8]) -> bool {
    match a.provider {
        Provider::Twilio => {
            let Some(given) = h.twilio else { return false };
            let params = form_pairs(body);
            let want = twilio_signature(a.secret("auth_token"), url, &params);
            constant_time_eq(given.trim().as_bytes(), want.as_bytes())
        }
        Provider::HttpSms => check_sha256_header(h.gateway, a.secret("hmac_secret"), body),
        Provider::Whatsapp | Provider::Messenger | Provider::Instagram => {
            check_sha256_header(h.hub, a.secret("app_secret"), body)
        }
        Provider::Telegram => {
            let want = a.secret("secret_token");
            !want.is_empty()
                && h.telegram
                    .is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes()))
        }
        // Mail arrives by SMTP, never by webhook.
        Provider::Email => false,
    }
}

/// Meta's subscription check: `hub.mode=subscribe` with our verify token gets the challenge.
pub fn verify_subscription(a: &AccountInfo<'_>, query: &[(String, String)]) -> Option<String> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let token = a.secret("verify_token");
    (get("hub.mode") == Some("subscribe")
        && !token.is_empty()
        && get("hub.verify_token")
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes())))
    .then(|| get("hub.challenge").unwrap_or_default().to_owned())
}

/// The name/value pairs of a form-encoded body.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

// ----- inbound -----

/// A media file a message refers to, and how to fetch it.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaRef {
    /// A URL to GET (Twilio with basic auth, Messenger/Instagram and the gateway plain).
    Url {
        /// Where.
        url: String,
        /// Content type, when the webhook says it.
        content_type: Option<String>,
    },
    /// A WhatsApp media id: `GET /{version}/{id}` gives the URL, fetched with the bearer token.
    WhatsappId {
        /// Media id.
        id: String,
        /// Content type.
        content_type: Option<String>,
        /// File name (documents).
        name: Option<String>,
    },
    /// A Telegram file id: `getFile` gives the path under `/file/bot<token>/`.
    TelegramFile {
        /// File id.
        file_id: String,
        /// Content type.
        content_type: Option<String>,
        /// File name (documents).
        name: Option<String>,
    },
}

/// A customer's message from a webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The provider's id (idempotency key per account).
    pub provider_message_id: String,
    /// The customer's address (E.164 for phones, the provider's user id otherwise).
    pub contact_value: String,
    /// The customer's name, when the provider gives one.
    pub name: Option<String>,
    /// The text (or caption).
    pub text: String,
    /// Attached media.
    pub media: Vec<MediaRef>,
}

/// One thing a webhook says.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A customer's message.
    Message(InboundMessage),
    /// A state change of one of our messages, by the provider's id.
    Receipt {
        /// Provider's message id.
        provider_message_id: String,
        /// `sent`, `delivered`, `read` or `failed`.
        state: &'static str,
        /// Why it failed.
        error: Option<String>,
    },
    /// Every message to `contact_value` sent up to `until_ms` reached `state` (Messenger's
    /// delivery and read watermarks).
    Watermark {
        /// The customer's id.
        contact_value: String,
        /// `delivered` or `read`.
        state: &'static str,
        /// Watermark (ms since the epoch).
        until_ms: i64,
    },
}

/// Why a webhook body is not what the provider publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct BadPayload(pub String);

fn bad(m: impl Into<String>) -> BadPayload {
    BadPayload(m.into())
}

fn phone(s: &str, cc: Option<CountryCode>) -> Result<String, BadPayload> {
    normalize(s, cc)
        .map(String::from)
        .map_err(|e| bad(format!("sender: {e}")))
}

fn map_state(s: &str) -> Option<&'static str> {
    Some(match s {
        "sent" => "sent",
        "delivered" => "delivered",
        "read" => "read",
        "failed" | "undelivered" => "failed",
        _ => return None,
    })
}

/// Parses a webhook body into what it says.
pub fn parse_webhook(
    provider: Provider,
    body: &[u8],
    cc: Option<CountryCode>,
) -> Result<Vec<Inbound>, BadPayload> {
    match provider {
        Provider::Twilio => parse_twilio(body, cc),
        Provider::HttpSms => parse_gateway(&json_body(body)?, cc),
        Provider::Whatsapp => parse_whatsapp(&json_body(body)?),
        Provider::Telegram => parse_telegram(&json_body(body)?),
        Provider::Messenger => parse_meta_messaging(&json_body(body)?, "page"),
        Provider::Instagram => parse_meta_messaging(&json_body(body)?, "instagram"),
        Provider::Email => Err(bad("email arrives by SMTP, not by webhook")),
    }
}

fn json_body(body: &[u8]) -> Result<Value, BadPayload> {
    serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))
}

fn parse_twilio(body: &[u8], cc: Option<CountryCode>) -> Result<Vec<Inbound>, BadPayload> {
    let p = form_pairs(body);
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let sid = get("MessageSid")
        .or_else(|| get("SmsSid"))
        .ok_or_else(|| bad("MessageSid is missing"))?;
    // A status callback carries MessageStatus; an incoming message has Body/From (its
    // SmsStatus is `received`).
    if let Some(status) = get("MessageStatus")
        && status != "received"
    {
        return Ok(map_state(status)
            .map(|state| Inbound::Receipt {
                provider_message_id: sid.to_owned(),
                state,
                error: get("ErrorCode").map(|c| format!("twilio error {c}")),
            })
            .into_iter()
            .collect());
    }
    let from = get("From").ok_or_else(|| bad("From is missing"))?;
    let n: usize = get("NumMedia").unwrap_or("0").parse().unwrap_or(0);
    let media = (0..n.min(10))
        .filter_map(|i| {
            get(&format!("MediaUrl{i}")).map(|url| MediaRef::Url {
                url: url.to_owned(),
                content_type: get(&format!("MediaContentType{i}")).map(str::to_owned),
            })
        })
        .collect();
    Ok(vec![Inbound::Message(InboundMessage {
        provider_message_id: sid.to_owned(),
        contact_value: phone(from, cc)?,
        name: None,
        text: get("Body").unwrap_or_default().to_owned(),
        media,
    })])
}

fn parse_gateway(v: &Value, cc: Option<CountryCode>) -> Result<Vec<Inbound>, BadPayload> {
    let id = v["id"]
        .as_str()
        .ok_or_else(|| bad("id (string) is missing"))?;
    match v["type"].as_str().unwrap_or("message") {
        "status" => {
            let s = v["status"].as_str().unwrap_or_default();
            let state = map_state(s).ok_or_else(|| bad(format!("unknown status {s:?}")))?;
            Ok(vec![Inbound::Receipt {
                provider_message_id: id.to_owned(),
                state,
                error: v["error"].as_str().map(str::to_owned),
            }])
        }
        "message" => {
            let from = v["from"].as_str().ok_or_else(|| bad("from is missing"))?;
            let media = v["media"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| {
                            m["url"].as_str().map(|u| MediaRef::Url {
                                url: u.to_owned(),
                                content_type: m["content_type"].as_str().map(str::to_owned),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(vec![Inbound::Message(InboundMessage {
                provider_message_id: id.to_owned(),
                contact_value: phone(from, cc)?,
                name: None,
                text: v["text"].as_str().unwrap_or_default().to_owned(),
                media,
            })])
        }
        t => Err(bad(format!("unknown type {t:?}"))),
    }
}

fn parse_whatsapp(v: &Value) -> Result<Vec<Inbound>, BadPayload> {
    if v["object"] != "whatsapp_business_account" {
        return Err(bad("object is not whatsapp_business_account"));
    }
    let mut out = Vec::new();
    for entry in v["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            let value = &change["value"];
            let names: Vec<(&str, &str)> = value["contacts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| Some((c["wa_id"].as_str()?, c["profile"]["name"].as_str()?)))
                .collect();
            for m in value["messages"].as_array().into_iter().flatten() {
                let id = m["id"].as_str().ok_or_else(|| bad("messages[].id"))?;
                let from = m["from"].as_str().ok_or_else(|| bad("messages[].from"))?;
                let kind = m["type"].as_str().unwrap_or("text");
                let (text, media) = match kind {
                    "text" => (m["text"]["body"].as_str().unwrap_or_default(), vec![]),
                    "image" | "document" | "audio" | "video" | "sticker" => {
                        let o = &m[kind];
                        let media_id = o["id"].as_str().ok_or_else(|| bad("media id"))?;
                        (
                            o["caption"].as_str().unwrap_or_default(),
                            vec![MediaRef::WhatsappId {
                                id: media_id.to_owned(),
                                content_type: o["mime_type"].as_str().map(str::to_owned),
                                name: o["filename"].as_str().map(str::to_owned),
                            }],
                        )
                    }
                    "button" => (m["button"]["text"].as_str().unwrap_or_default(), vec![]),
                    _ => ("", vec![]),
                };
                out.push(Inbound::Message(InboundMessage {
                    provider_message_id: id.to_owned(),
                    // wa_id is the number without `+`.
                    contact_value: phone(&format!("+{from}"), None)?,
                    name: names
                        .iter()
                        .find(|(w, _)| *w == from)
                        .map(|(_, n)| (*n).to_owned()),
                    text: text.to_owned(),
                    media,
                }));
            }
            for s in value["statuses"].as_array().into_iter().flatten() {
                let id = s["id"].as_str().ok_or_else(|| bad("statuses[].id"))?;
                if let Some(state) = map_state(s["status"].as_str().unwrap_or_default()) {
                    out.push(Inbound::Receipt {
                        provider_message_id: id.to_owned(),
                        state,
                        error: s["errors"][0]["title"].as_str().map(str::to_owned),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn parse_telegram(v: &Value) -> Result<Vec<Inbound>, BadPayload> {
    if !v["update_id"].is_i64() {
        return Err(bad("update_id is missing"));
    }
    // Other updates (edited messages, channel posts, callbacks) are acknowledged and ignored.
    let m = &v["message"];
    if m.is_null() {
        return Ok(vec![]);
    }
    let chat = m["chat"]["id"]
        .as_i64()
        .ok_or_else(|| bad("message.chat.id"))?;
    let mid = m["message_id"]
        .as_i64()
        .ok_or_else(|| bad("message.message_id"))?;
    let mut media = Vec::new();
    // `photo` lists sizes, smallest first: fetch the largest.
    if let Some(p) = m["photo"].as_array().and_then(|a| a.last()) {
        media.push(MediaRef::TelegramFile {
            file_id: p["file_id"].as_str().unwrap_or_default().to_owned(),
            content_type: Some("image/jpeg".into()),
            name: None,
        });
    }
    if let Some(d) = m["document"].as_object() {
        media.push(MediaRef::TelegramFile {
            file_id: d
                .get("file_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            content_type: d
                .get("mime_type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            name: d
                .get("file_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    let from = &m["from"];
    let name = [from["first_name"].as_str(), from["last_name"].as_str()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(vec![Inbound::Message(InboundMessage {
        // message_id is unique only within its chat.
        provider_message_id: format!("{chat}:{mid}"),
        contact_value: chat.to_string(),
        name: (!name.is_empty()).then_some(name),
        text: m["text"]
            .as_str()
            .or(m["caption"].as_str())
            .unwrap_or_default()
            .to_owned(),
        media,
    })])
}

fn parse_meta_messaging(v: &Value, object: &str) -> Result<Vec<Inbound>, BadPayload> {
    if v["object"] != object {
        return Err(bad(format!("object is not {object}")));
    }
    let mut out = Vec::new();
    for entry in v["entry"].as_array().into_iter().flatten() {
        for e in entry["messaging"].as_array().into_iter().flatten() {
            let sender = e["sender"]["id"]
                .as_str()
                .ok_or_else(|| bad("messaging[].sender.id"))?;
            let m = &e["message"];
            if m.is_object() {
                // Our own sends come back as echoes; they are not the customer's.
                if m["is_echo"] == true {
                    continue;
                }
                let mid = m["mid"].as_str().ok_or_else(|| bad("message.mid"))?;
                let media = m["attachments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| {
                        a["payload"]["url"].as_str().map(|u| MediaRef::Url {
                            url: u.to_owned(),
                            content_type: None,
                        })
                    })
                    .collect();
                out.push(Inbound::Message(InboundMessage {
                    provider_message_id: mid.to_owned(),
                    contact_value: sender.to_owned(),
                    name: None,
                    text: m["text"].as_str().unwrap_or_default().to_owned(),
                    media,
                }));
            } else if e["delivery"].is_object() {
                let d = &e["delivery"];
                for mid in d["mids"].as_array().into_iter().flatten() {
                    if let Some(mid) = mid.as_str() {
                        out.push(Inbound::Receipt {
                            provider_message_id: mid.to_owned(),
                            state: "delivered",
                            error: None,
                        });
                    }
                }
                if let Some(w) = d["watermark"].as_i64() {
                    out.push(Inbound::Watermark {
                        contact_value: sender.to_owned(),
                        state: "delivered",
                        until_ms: w,
                    });
                }
            } else if e["read"].is_object() {
                let r = &e["read"];
                if let Some(w) = r["watermark"].as_i64() {
                    out.push(Inbound::Watermark {
                        contact_value: sender.to_owned(),
                        state: "read",
                        until_ms: w,
                    });
                } else if let Some(mid) = r["mid"].as_str() {
                    // Instagram names the message read.
                    out.push(Inbound::Receipt {
                        provider_message_id: mid.to_owned(),
                        state: "read",
                        error: None,
                    });
                }
            }
        }
    }
    Ok(out)
}

// ----- outbound -----

/// What to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound<'a> {
    /// Free text.
    Text(&'a str),
    /// A WhatsApp message template.
    Template {
        /// Template name.
        name: &'a str,
        /// Language code (`en_US`).
        language: &'a str,
        /// Body parameters, in order.
        parameters: &'a [String],
    },
}

/// An HTTP request to a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRequest {
    /// Full URL.
    pub url: String,
    /// Headers besides Content-Type.
    pub headers: Vec<(&'static str, String)>,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The request that sends `what` to `to` through an account. `status_callback` is our
/// webhook URL for Twilio's delivery reports, when the public URL is known.
pub fn build_send(
    a: &AccountInfo<'_>,
    to: &str,
    what: &Outbound<'_>,
    client_ref: &str,
    status_callback: Option<&str>,
) -> Result<ProviderRequest, String> {
    let base = a.base_url.trim_end_matches('/');
    let json_req =
        |url: String, headers: Vec<(&'static str, String)>, body: Value| ProviderRequest {
            url,
            headers,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        };
    let Outbound::Text(text) = what else {
        let Outbound::Template {
            name,
            language,
            parameters,
        } = what
        else {
            unreachable!("two variants")
        };
        if a.provider != Provider::Whatsapp {
            return Err("templates are a WhatsApp feature".into());
        }
        let params: Vec<Value> = parameters
            .iter()
            .map(|p| json!({"type": "text", "text": p}))
            .collect();
        let mut template = json!({"name": name, "language": {"code": language}});
        if !params.is_empty() {
            template["components"] = json!([{"type": "body", "parameters": params}]);
        }
        return Ok(json_req(
            format!(
                "{base}/{}/{}/messages",
                a.graph_version(),
                a.setting("phone_number_id")
            ),
            vec![(
                "Authorization",
                format!("Bearer {}", a.secret("access_token")),
            )],
            json!({
                "messaging_product": "whatsapp", "recipient_type": "individual",
                "to": to.trim_start_matches('+'), "type": "template", "template": template,
            }),
        ));
    };
    Ok(match a.provider {
        // Mail is composed and sent by crate::email, not over HTTP.
        Provider::Email => return Err("email is sent through the SMTP relay".into()),
        Provider::Twilio => {
            let sid = a.setting("account_sid");
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("To", to)
                .append_pair("From", a.setting("from"))
                .append_pair("Body", text);
            if let Some(cb) = status_callback {
                form.append_pair("StatusCallback", cb);
            }
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{sid}:{}", a.secret("auth_token")));
            ProviderRequest {
                url: format!("{base}/2010-04-01/Accounts/{}/Messages.json", enc(sid)),
                headers: vec![("Authorization", format!("Basic {auth}"))],
                content_type: "application/x-www-form-urlencoded",
                body: form.finish().into_bytes(),
            }
        }
        Provider::HttpSms => {
            let body = json!({"to": to, "from": a.setting("from"), "text": text, "client_ref": client_ref})
                .to_string();
            let mut headers = vec![(
                "X-Switchboard-Signature",
                format!(
                    "sha256={}",
                    hmac_sha256_hex(a.secret("hmac_secret").as_bytes(), body.as_bytes())
                ),
            )];
            if !a.secret("api_key").is_empty() {
                headers.push(("Authorization", format!("Bearer {}", a.secret("api_key"))));
            }
            ProviderRequest {
                url: format!("{base}/messages"),
                headers,
                content_type: "application/json",
                body: body.into_bytes(),
            }
        }
        Provider::Whatsapp => json_req(
            format!(
                "{base}/{}/{}/messages",
                a.graph_version(),
                a.setting("phone_number_id")
            ),
            vec![(
                "Authorization",
                format!("Bearer {}", a.secret("access_token")),
            )],
            json!({
                "messaging_product": "whatsapp", "recipient_type": "individual",
                "to": to.trim_start_matches('+'), "type": "text",
                "text": {"preview_url": false, "body": text},
            }),
        ),
        Provider::Telegram => json_req(
            format!("{base}/bot{}/sendMessage", a.secret("bot_token")),
            vec![],
            json!({"chat_id": to.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(to)), "text": text}),
        ),
        Provider::Messenger | Provider::Instagram => json_req(
            format!(
                "{base}/{}/me/messages?access_token={}",
                a.graph_version(),
                enc(a.secret("page_access_token"))
            ),
            vec![],
            json!({"recipient": {"id": to}, "messaging_type": "RESPONSE", "message": {"text": text}}),
        ),
    })
}

/// How a send went, from the provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// Accepted, with the provider's message id.
    Sent(String),
    /// Worth retrying (5xx, 429, a network error).
    Retry(String),
    /// Refused for good (4xx).
    Failed(String),
    /// Not attempted: kept in the outbox as it is (email without a relay), with the reason.
    Held(String),
}

/// Reads a provider's answer to a send.
pub fn parse_send_response(provider: Provider, status: u16, body: &[u8]) -> SendOutcome {
    if status == 429 || status >= 500 {
        return SendOutcome::Retry(format!("provider answered {status}"));
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        let detail = v["message"]
            .as_str()
            .or(v["error"]["message"].as_str())
            .or(v["description"].as_str())
            .unwrap_or("");
        return SendOutcome::Failed(format!("provider answered {status} {detail}").trim().into());
    }
    let id = match provider {
        Provider::Twilio => v["sid"].as_str().map(str::to_owned),
        Provider::HttpSms => v["id"].as_str().map(str::to_owned),
        Provider::Whatsapp => v["messages"][0]["id"].as_str().map(str::to_owned),
        Provider::Telegram => match (v["ok"].as_bool(), v["result"]["message_id"].as_i64()) {
            (Some(true), Some(mid)) => v["result"]["chat"]["id"]
                .as_i64()
                .map(|c| format!("{c}:{mid}")),
            _ => None,
        },
        Provider::Messenger | Provider::Instagram => v["message_id"].as_str().map(str::to_owned),
        Provider::Email => None,
    };
    match id {
        Some(id) => SendOutcome::Sent(id),
        None => SendOutcome::Failed("the provider's answer has no message id".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_signature_matches_the_documented_example() {
        // Twilio's request-validation example: auth token 12345, this URL and these parameters give
        // the signature below.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn sha256_headers_are_checked() {
        let sig = format!("sha256={}", hmac_sha256_hex(b"secret", b"{}"));
        assert!(check_sha256_header(Some(&sig), "secret", b"{}"));
        assert!(!check_sha256_header(Some(&sig), "other", b"{}"));
        assert!(!check_sha256_header(Some(&sig), "secret", b"{ }"));
        assert!(!check_sha256_header(None, "secret", b"{}"));
        assert!(!check_sha256_header(Some(&sig), "", b"{}"));
    }

    #[test]
    fn whatsapp_payloads_parse() {
        let v = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "15551234567"}],
            "messages": [{"from": "15551234567", "id": "wamid.A", "timestamp": "1", "type": "image",
                          "image": {"id": "m1", "mime_type": "image/png", "caption": "look"}}],
            "statuses": [{"id": "wamid.B", "status": "read", "timestamp": "2", "recipient_id": "15551234567"}]
        }}]}]});
        let out = parse_webhook(Provider::Whatsapp, v.to_string().as_bytes(), None).expect("ok");
        assert_eq!(out.len(), 2);
        let Inbound::Message(m) = &out[0] else {
            panic!("message")
        };
        assert_eq!(m.contact_value, "+15551234567");
        assert_eq!(m.name.as_deref(), Some("Ana"));
        assert_eq!(m.text, "look");
        assert!(matches!(&m.media[0], MediaRef::WhatsappId { id, .. } if id == "m1"));
        assert!(matches!(&out[1], Inbound::Receipt { state: "read", .. }));
    }

    #[test]
    fn send_answers_are_classified() {
        assert_eq!(
            parse_send_response(Provider::Twilio, 201, br#"{"sid":"SM1"}"#),
            SendOutcome::Sent("SM1".into())
        );
        assert!(matches!(
            parse_send_response(Provider::Twilio, 503, b""),
            SendOutcome::Retry(_)
        ));
        assert!(matches!(
            parse_send_response(Provider::Whatsapp, 429, b""),
            SendOutcome::Retry(_)
        ));
        assert!(matches!(
            parse_send_response(Provider::Whatsapp, 400, br#"{"error":{"message":"bad"}}"#),
            SendOutcome::Failed(m) if m.contains("bad")
        ));
        assert_eq!(
            parse_send_response(
                Provider::Telegram,
                200,
                br#"{"ok":true,"result":{"message_id":7,"chat":{"id":42}}}"#
            ),
            SendOutcome::Sent("42:7".into())
        );
    }
}
