//! The HTTP surface: `/api/v1` (documented in the OpenAPI document built from the same route
//! table, so the two cannot drift apart), health, metrics and the OpenAPI document itself.

mod auth;
mod config;
mod customer_links;
pub mod flows;
pub(crate) mod interactions;
mod live;
mod messages;
mod messaging;
mod people;
mod recordings;
pub mod views;
mod voice;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "Omnichannel contact center: queues, agents, interactions, customers, live events."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "auth", description = "Log in and out"),
        (name = "config", description = "Skills and queues (admins)"),
        (name = "people", description = "Users and agents"),
        (name = "interactions", description = "Routed conversations and tasks"),
        (name = "customers", description = "Customers and their history"),
        (name = "messaging", description = "SMS and messaging-app accounts and conversations"),
        (name = "flows", description = "IVR and chat bot flows, versioned"),
        (name = "stats", description = "Live figures and events"),
        (name = "voice", description = "SIP trunks and numbers (admins)"),
        (name = "recordings", description = "Call recordings: metadata, audio, live pause and resume"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The `/api/v1` routes with their OpenAPI document.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(config::list_skills, config::create_skill))
        .routes(routes!(
            config::get_skill,
            config::patch_skill,
            config::delete_skill
        ))
        .routes(routes!(config::list_queues, config::create_queue))
        .routes(routes!(
            config::get_queue,
            config::patch_queue,
            config::delete_queue
        ))
        .routes(routes!(people::list_users, people::create_user))
        .routes(routes!(
            people::get_user,
            people::patch_user,
            people::delete_user
        ))
        .routes(routes!(people::list_agents, people::create_agent))
        .routes(routes!(
            people::get_agent,
            people::patch_agent,
            people::delete_agent
        ))
        .routes(routes!(people::get_state, people::put_state))
        .routes(routes!(
            people::get_sip,
            people::put_sip,
            people::delete_sip
        ))
        .routes(routes!(interactions::list, interactions::create))
        .routes(routes!(interactions::get))
        .routes(routes!(interactions::accept))
        .routes(routes!(interactions::reject))
        .routes(routes!(interactions::end))
        .routes(routes!(interactions::transfer))
        .routes(routes!(interactions::hold))
        .routes(routes!(messages::list, messages::post))
        .routes(routes!(messages::typing))
        .routes(routes!(messages::read))
        .routes(routes!(messages::attachment))
        .routes(routes!(messages::preview))
        .routes(routes!(crate::attachments::upload_for_staff))
        .routes(routes!(
            interactions::list_customers,
            interactions::create_customer
        ))
        .routes(routes!(interactions::get_customer))
        .routes(routes!(voice::list_trunks, voice::create_trunk))
        .routes(routes!(
            voice::get_trunk,
            voice::put_trunk,
            voice::delete_trunk
        ))
        .routes(routes!(voice::dial))
        .routes(routes!(voice::list_numbers))
        .routes(routes!(voice::put_number, voice::delete_number))
        .routes(routes!(customer_links::merge))
        .routes(routes!(customer_links::list_merges))
        .routes(routes!(customer_links::undo_merge))
        .routes(routes!(customer_links::timeline))
        .routes(routes!(messaging::list_accounts, messaging::create_account))
        .routes(routes!(
            messaging::get_account,
            messaging::patch_account,
            messaging::delete_account
        ))
        .routes(routes!(messaging::get_messaging))
        .routes(routes!(messaging::send_template))
        .routes(routes!(messaging::continue_on))
        .routes(routes!(flows::list, flows::create))
        .routes(routes!(flows::get, flows::put, flows::delete))
        .routes(routes!(flows::versions))
        .routes(routes!(flows::version))
        .routes(routes!(flows::get_settings, flows::put_settings))
        .routes(routes!(recordings::list, recordings::import))
        .routes(routes!(recordings::get, recordings::delete))
        .routes(routes!(recordings::audio))
        .routes(routes!(recordings::pause))
        .routes(routes!(recordings::resume))
        .routes(routes!(recordings::start))
        .routes(routes!(live::realtime))
        .routes(routes!(live::events))
        .split_for_parts()
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let (api, mut doc) = api_routes();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let doc_json = doc.to_json().unwrap_or_else(|_| "{}".to_owned());
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(api)
        .merge(crate::web::routes())
        .merge(crate::chat::routes())
        .merge(crate::messaging::routes())
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route(
            "/openapi.json",
            get(move || {
                let body = doc_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.store.is_ready().await {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )
            .into_response()
    } else {
        ApiError::unavailable("the store is not answering").into_response()
    }
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    if let Some(rss) = resident_bytes() {
        metrics::gauge!("switchboard_process_resident_bytes").set(rss as f64);
    }
    if let Some(cpu) = cpu_seconds() {
        metrics::gauge!("switchboard_process_cpu_seconds_total").set(cpu);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// CPU time the process used, user plus system (Linux: /proc/self/stat, in USER_HZ = 100
/// ticks per second).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The process's resident memory (Linux: from /proc/self/statm; pages of 4 KiB).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route; see /openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /openapi.json",
    )
}
