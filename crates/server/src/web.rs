//! The browser pages (chat widget, agent desktop, supervisor view): their routes land with the
//! pages themselves.

use crate::state::AppState;
use axum::Router;

/// Routes of the pages and their assets.
pub fn routes() -> Router<AppState> {
    Router::new()
}
