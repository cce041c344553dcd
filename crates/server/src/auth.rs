//! Accounts and access: argon2 password hashes, opaque bearer tokens (only their SHA-256 is
//! stored), the [`Caller`] extractor that every `/api/v1` route takes, role checks, and the
//! login rate limiter (per username and per client address).

use crate::error::ApiError;
use crate::state::AppState;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;
use switchboard_model::{AgentId, MonoTime, Role};
use switchboard_store::User;

/// Hashes a password with argon2id (on a blocking thread: it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Checks a password against a stored hash (on a blocking thread).
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A new random bearer token.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The authenticated caller of a route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account.
    pub user: User,
    /// Its agent profile, if it has one.
    pub agent: Option<AgentId>,
    /// The session's token hash (long-lived streams watch for its revocation).
    pub token_hash: String,
    /// When the session expires (ms).
    pub expires_at: i64,
}

impl Caller {
    /// Ok when the caller's role is `role` or above; 403 otherwise.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.user.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role; you are {}",
                role.as_str(),
                self.user.role.as_str()
            )))
        }
    }

    /// Whether the caller is a supervisor or admin.
    pub fn is_supervisor(&self) -> bool {
        self.user.role >= Role::Supervisor
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    // Browsers cannot set headers on a WebSocket: `?token=` is accepted there and only there
    // (query strings end up in logs and referrers).
    if parts.uri.path() != "/api/v1/events" {
        return None;
    }
    parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_owned())
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "send Authorization: Bearer TOKEN (from POST /api/v1/auth/login)",
            )
        })?;
        let hash = token_hash(&token);
        let (session, user, agent) = state
            .store
            .session(&hash, state.clock.wall_ms())
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("the token is unknown or has expired; log in again")
            })?;
        Ok(Caller {
            user,
            agent,
            token_hash: hash,
            expires_at: session.expires_at,
        })
    }
}

/// Counts failed logins per key in fixed windows; a key over its limit is blocked until its
/// window ends.
#[derive(Debug)]
pub struct LoginLimiter {
    window: Duration,
    per_user: u32,
    per_ip: u32,
    counts: HashMap<String, (MonoTime, u32)>,
}

impl LoginLimiter {
    /// A limiter with these limits.
    pub fn new(window: Duration, per_user: u32, per_ip: u32) -> Self {
        LoginLimiter {
            window,
            per_user,
            per_ip,
            counts: HashMap::new(),
        }
    }

    fn blocked_for(&self, key: &str, limit: u32, now: MonoTime) -> Option<Duration> {
        let (start, n) = self.counts.get(key)?;
        let end = *start + self.window;
        (*n >= limit && now < end).then(|| end - now)
    }

    /// How long a login for `username` from `ip` must wait, if it is blocked.
    pub fn check(&self, username: &str, ip: &str, now: MonoTime) -> Option<Duration> {
        let u = self.blocked_for(&format!("u:{username}"), self.per_user, now);
        let i = self.blocked_for(&format!("i:{ip}"), self.per_ip, now);
        u.max(i)
    }

    /// Records a failed login.
    pub fn fail(&mut self, username: &str, ip: &str, now: MonoTime) {
        for key in [format!("u:{username}"), format!("i:{ip}")] {
            let e = self.counts.entry(key).or_insert((now, 0));
            if now >= e.0 + self.window {
                *e = (now, 0);
            }
            e.1 += 1;
        }
        // Bound memory under a flood of distinct usernames: forget finished windows.
        if self.counts.len() > 100_000 {
            let window = self.window;
            self.counts.retain(|_, (start, _)| now < *start + window);
        }
    }

    /// Records a successful login (clears the username's failures).
    pub fn succeed(&mut self, username: &str) {
        self.counts.remove(&format!("u:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_limit_and_releases_after_window() {
        let mut l = LoginLimiter::new(Duration::from_secs(60), 3, 10);
        let t0 = MonoTime::from_secs(100);
        for _ in 0..3 {
            assert_eq!(l.check("bob", "1.2.3.4", t0), None);
            l.fail("bob", "1.2.3.4", t0);
        }
        assert_eq!(l.check("bob", "1.2.3.4", t0), Some(Duration::from_secs(60)));
        // another user from the same address is not blocked yet
        assert_eq!(l.check("alice", "1.2.3.4", t0), None);
        assert_eq!(
            l.check("bob", "5.6.7.8", t0 + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn limiter_blocks_an_address_trying_many_users() {
        let mut l = LoginLimiter::new(Duration::from_secs(60), 3, 5);
        let t0 = MonoTime::from_secs(1);
        for i in 0..5 {
            l.fail(&format!("user{i}"), "9.9.9.9", t0);
        }
        assert!(l.check("fresh", "9.9.9.9", t0).is_some());
        assert!(l.check("fresh", "8.8.8.8", t0).is_none());
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("s3cret-pw".into()).await.expect("hash");
        assert!(verify_password("s3cret-pw".into(), h.clone()).await);
        assert!(!verify_password("wrong".into(), h).await);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
