//! Media of provider messages: fetched from the provider (with its authentication), limited in
//! size, and stored content-addressed under `<data>/media/<2 hex>/<sha256 hex>`. Written to a
//! temporary file and renamed, so a file under its hash is always complete.
//!
//! Kept small and separate on purpose: chat attachments have a store of their own for now; one
//! file store for both is a later merge.

use super::providers::{AccountInfo, MediaRef};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The content-addressed media directory.
#[derive(Debug, Clone)]
pub struct MediaStore {
    dir: PathBuf,
    /// Largest file accepted.
    pub max_bytes: usize,
}

impl MediaStore {
    /// A store under `dir`.
    pub fn new(dir: PathBuf, max_bytes: usize) -> Self {
        MediaStore { dir, max_bytes }
    }

    /// Stores bytes durably; returns their SHA-256 (hex).
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let hash: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = self.path(&hash).expect("a SHA-256 in hex");
        let dir = self.dir.join(&hash[..2]);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(hash);
        }
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = dir.join(format!("{hash}.{}.tmp", std::process::id()));
        let mut f = tokio::fs::File::create(&tmp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, &path).await?;
        Ok(hash)
    }

    /// The path of a stored file (`None` for a string that is not a SHA-256).
    pub fn path(&self, hash: &str) -> Option<PathBuf> {
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(&hash[..2]).join(hash))
    }
}

/// GETs a URL with optional headers, refusing bodies over `max` bytes.
async fn get_limited(
    http: &reqwest::Client,
    url: &str,
    auth: Option<String>,
    max: usize,
) -> Result<(Vec<u8>, Option<String>), String> {
    let mut req = http.get(url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let mut res = req.send().await.map_err(|e| format!("fetch failed: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("provider answered {}", res.status().as_u16()));
    }
    if res.content_length().is_some_and(|l| l > max as u64) {
        return Err(format!("larger than {max} bytes"));
    }
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("fetch failed: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            return Err(format!("larger than {max} bytes"));
        }
    }
    Ok((body, ct))
}

async fn get_json(
    http: &reqwest::Client,
    url: &str,
    auth: Option<String>,
) -> Result<Value, String> {
    let (body, _) = get_limited(http, url, auth, 1024 * 1024).await?;
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

/// Fetches and stores one media file; the attachment's JSON, with an `error` when it could
/// not be fetched (the message is kept either way).
pub async fn fetch_and_store(
    http: &reqwest::Client,
    store: &MediaStore,
    a: &AccountInfo<'_>,
    m: &MediaRef,
) -> Value {
    match fetch(http, store, a, m).await {
        Ok(v) => v,
        Err(e) => {
            let (ct, name) = match m {
                MediaRef::Url { content_type, .. } => (content_type.clone(), None),
                MediaRef::WhatsappId {
                    content_type, name, ..
                }
                | MediaRef::TelegramFile {
                    content_type, name, ..
                } => (content_type.clone(), name.clone()),
            };
            json!({"content_type": ct, "name": name, "error": e})
        }
    }
}

async fn fetch(
    http: &reqwest::Client,
    store: &MediaStore,
    a: &AccountInfo<'_>,
    m: &MediaRef,
) -> Result<Value, String> {
    use super::providers::Provider;
    use base64::Engine as _;
    let base = a.base_url.trim_end_matches('/');
    let secret = |k: &str| a.secrets[k].as_str().unwrap_or_default().to_owned();
    let (bytes, ct, name) = match m {
        MediaRef::Url { url, content_type } => {
            // Twilio's media URLs take the account's basic auth when media protection is on.
            let auth = (a.provider == Provider::Twilio).then(|| {
                let sid = a.settings["account_sid"].as_str().unwrap_or_default();
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{sid}:{}", secret("auth_token")))
                )
            });
            let (b, got) = get_limited(http, url, auth, store.max_bytes).await?;
            (b, content_type.clone().or(got), None)
        }
        MediaRef::WhatsappId {
            id,
            content_type,
            name,
        } => {
            let bearer = format!("Bearer {}", secret("access_token"));
            let version = a.settings["api_version"]
                .as_str()
                .unwrap_or(super::providers::GRAPH_VERSION);
            let meta = get_json(
                http,
                &format!("{base}/{version}/{id}"),
                Some(bearer.clone()),
            )
            .await?;
            let url = meta["url"].as_str().ok_or("the media has no url")?;
            let (b, got) = get_limited(http, url, Some(bearer), store.max_bytes).await?;
            let ct = content_type
                .clone()
                .or(meta["mime_type"].as_str().map(str::to_owned))
                .or(got);
            (b, ct, name.clone())
        }
        MediaRef::TelegramFile {
            file_id,
            content_type,
            name,
        } => {
            let token = secret("bot_token");
            let id: String = form_urlencoded::byte_serialize(file_id.as_bytes()).collect();
            let meta = get_json(
                http,
                &format!("{base}/bot{token}/getFile?file_id={id}"),
                None,
            )
            .await?;
            let path = meta["result"]["file_path"]
                .as_str()
                .ok_or("getFile gave no file_path")?;
            let (b, got) = get_limited(
                http,
                &format!("{base}/file/bot{token}/{path}"),
                None,
                store.max_bytes,
            )
            .await?;
            (b, content_type.clone().or(got), name.clone())
        }
    };
    let hash = store
        .put(&bytes)
        .await
        .map_err(|e| format!("could not store: {e}"))?;
    Ok(json!({"sha256": hash, "size": bytes.len(), "content_type": ct, "name": name}))
}
