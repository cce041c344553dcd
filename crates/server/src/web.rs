//! The browser pages, embedded in the binary (no front-end build step): the chat widget
//! (`/widget.js`), the demo page that embeds it (`/demo/chat`), the agent desktop (`/agent`), the
//! supervisor view (`/supervisor`) and their shared assets (`/assets/{file}`: the one translation
//! table `i18n.js`, the API helper `api.js`, the page scripts and the style sheet).
//!
//! The sources live in `crates/server/web/` as hand-written ES2020 modules and CSS; they are
//! included with `include_bytes!`, so a release binary carries them and nothing is read from disk.
//! Caching is short (`max-age=60`) so that an upgrade reaches browsers within a minute; every
//! response carries an `ETag` (a hash of the content) for cheap revalidation.
//!
//! What this module does not do: it serves no user data. The pages talk to `/api/v1`, to
//! `/api/v1/events` and (the widget) to `/chat/ws` like any other client.

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    /// Name under `/assets/`.
    name: &'static str,
    /// Content type.
    mime: &'static str,
    /// Content.
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The shared assets under `/assets/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "i18n.js",
        mime: JS,
        body: include_bytes!("../web/i18n.js"),
    },
    Asset {
        name: "api.js",
        mime: JS,
        body: include_bytes!("../web/api.js"),
    },
    Asset {
        name: "ui.js",
        mime: JS,
        body: include_bytes!("../web/ui.js"),
    },
    Asset {
        name: "agent.js",
        mime: JS,
        body: include_bytes!("../web/agent.js"),
    },
    Asset {
        name: "supervisor.js",
        mime: JS,
        body: include_bytes!("../web/supervisor.js"),
    },
    Asset {
        name: "styles.css",
        mime: CSS,
        body: include_bytes!("../web/styles.css"),
    },
    Asset {
        name: "demo.js",
        mime: JS,
        body: include_bytes!("../web/demo.js"),
    },
    Asset {
        name: "demo.css",
        mime: CSS,
        body: include_bytes!("../web/demo.css"),
    },
    Asset {
        name: "logo.svg",
        mime: SVG,
        body: include_bytes!("../web/logo.svg"),
    },
];

const WIDGET: Asset = Asset {
    name: "widget.js",
    mime: JS,
    body: include_bytes!("../web/widget.js"),
};
const AGENT_PAGE: &str = include_str!("../web/agent.html");
const SUPERVISOR_PAGE: &str = include_str!("../web/supervisor.html");
const DEMO_PAGE: &str = include_str!("../web/demo-chat.html");

/// Languages of the translation table; the first is the default.
const LANGS: &[(&str, &str)] = &[("en", "ltr"), ("ar", "rtl"), ("fa", "rtl")];

/// Pages may load scripts, styles and images from this origin only (images also from `data:`, and
/// `blob:` for attachments the desktop fetched with its token); styles may be set inline
/// (the widget's shadow root and computed widths), WebSockets go back to this origin.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// Routes of the pages and their assets.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(widget))
        .route("/demo/chat", get(demo_chat))
        .route("/agent", get(agent))
        .route("/supervisor", get(supervisor))
        .route("/assets/{file}", get(asset))
}

/// A strong ETag for embedded content (a hash of it: cheap next to sending it).
fn etag(body: &'static [u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex digits are a valid header value")
}

/// Answers with an embedded body: content type, short caching, ETag (and 304 when it matches).
fn embedded(req: &HeaderMap, mime: &'static str, body: &'static [u8], cors: bool) -> Response {
    let tag = etag(body);
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes());
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    h.insert(header::ETAG, tag);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if cors {
        // The widget runs on the customer's site and imports the translation table from here.
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    res
}

/// An HTML page: no caching beyond revalidation, and a content security policy.
fn page(html: String) -> Response {
    let mut res = html.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// `?lang=` of the pages.
#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// The language asked for, if the table has it, with its direction.
fn lang_of(q: &LangQuery) -> (&'static str, &'static str) {
    q.lang
        .as_deref()
        .and_then(|l| LANGS.iter().find(|(code, _)| *code == l))
        .copied()
        .unwrap_or(LANGS[0])
}

/// Fills `{{lang}}` and `{{dir}}` of a page template.
fn fill(template: &str, q: &LangQuery) -> String {
    let (lang, dir) = lang_of(q);
    template.replace("{{lang}}", lang).replace("{{dir}}", dir)
}

async fn widget(req: HeaderMap) -> Response {
    embedded(&req, WIDGET.mime, WIDGET.body, true)
}

async fn demo_chat(Query(q): Query<LangQuery>) -> Response {
    page(fill(DEMO_PAGE, &q))
}

async fn agent(Query(q): Query<LangQuery>) -> Response {
    page(fill(AGENT_PAGE, &q))
}

async fn supervisor(Query(q): Query<LangQuery>) -> Response {
    page(fill(SUPERVISOR_PAGE, &q))
}

async fn asset(Path(file): Path<String>, req: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => embedded(&req, a.mime, a.body, true),
        None => ApiError::not_found("asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_named_once_and_not_empty() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(
                ASSETS[i + 1..].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
    }

    #[test]
    fn pages_take_only_known_languages() {
        let q = |l: &str| LangQuery {
            lang: Some(l.to_owned()),
        };
        assert_eq!(lang_of(&q("fa")), ("fa", "rtl"));
        assert_eq!(lang_of(&q("ar")), ("ar", "rtl"));
        assert_eq!(lang_of(&q("\"><script>")), ("en", "ltr"));
        assert_eq!(lang_of(&LangQuery { lang: None }), ("en", "ltr"));
        let html = fill("<html lang=\"{{lang}}\" dir=\"{{dir}}\">", &q("fa"));
        assert_eq!(html, "<html lang=\"fa\" dir=\"rtl\">");
    }

    #[test]
    fn etags_are_stable_and_quoted() {
        let a = etag(ASSETS[0].body);
        assert_eq!(a, etag(ASSETS[0].body));
        assert!(
            a.to_str()
                .is_ok_and(|s| s.starts_with('"') && s.ends_with('"'))
        );
    }
}
