//! What calls hear from us: prompt files, text spoken by Debian's `espeak-ng`, and music on
//! hold. Everything becomes 8 kHz mono samples ([`switchboard_media::wav::to_8k_mono`]) that the
//! media task plays in 20 ms frames ([`switchboard_media::player`]).
//!
//! Spoken prompts are rendered once: `espeak-ng -v <voice> --stdout <text>` writes a WAV, kept
//! under `<data_dir>/prompts/tts-<sha256 of voice and text>.wav` and in memory; the next call
//! with the same text reads the cache. Voices: `en`, `ar`, `fa` (others fall back to `en`). A
//! machine without `espeak-ng` plays nothing for a text (logged once per text) and the flow
//! goes on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use switchboard_media::wav;

/// Most rendered prompts kept in memory (the disk cache keeps all).
const MEMORY_CACHE: usize = 512;

/// Prompts of one server.
#[derive(Debug)]
pub struct Prompts {
    dir: PathBuf,
    base: PathBuf,
    moh: Arc<[i16]>,
    cache: Mutex<HashMap<String, Arc<[i16]>>>,
}

/// The espeak-ng voice for a language.
pub fn voice_of(lang: &str) -> &'static str {
    match lang.split(['-', '_']).next().unwrap_or("en") {
        "ar" => "ar",
        "fa" => "fa",
        _ => "en",
    }
}

/// The cache key of a spoken text.
pub fn tts_key(voice: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(voice.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    let d = h.finalize();
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A WAV file's bytes as 8 kHz mono samples.
fn samples_of(bytes: &[u8]) -> Option<Arc<[i16]>> {
    match wav::parse(bytes) {
        Ok(w) => Some(wav::to_8k_mono(&w).into()),
        Err(e) => {
            tracing::warn!(error = %e, "a prompt is not a usable WAV file");
            None
        }
    }
}

impl Prompts {
    /// Prompts cached under `data_dir/prompts`, files relative to the same folder, music on
    /// hold from `moh_dir` (every `.wav`, in name order) or a generated melody.
    pub fn new(data_dir: &Path, moh_dir: Option<&Path>) -> Prompts {
        let dir = data_dir.join("prompts");
        let moh = moh_dir
            .and_then(load_moh)
            .unwrap_or_else(|| switchboard_media::player::default_hold_music().into());
        Prompts {
            base: dir.clone(),
            dir,
            moh,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The music on hold.
    pub fn hold_music(&self) -> Arc<[i16]> {
        self.moh.clone()
    }

    /// A prompt file (relative to the prompts folder, no `..`), else `text` spoken.
    pub async fn clip(
        &self,
        lang: &str,
        text: &str,
        prompt_file: Option<&str>,
    ) -> Option<Arc<[i16]>> {
        if let Some(f) = prompt_file {
            match self.file(f).await {
                Some(c) => return Some(c),
                None => tracing::warn!(file = f, "prompt file missing; speaking its text"),
            }
        }
        if text.trim().is_empty() {
            return None;
        }
        self.speak(voice_of(lang), text).await
    }

    async fn file(&self, name: &str) -> Option<Arc<[i16]>> {
        let p = Path::new(name);
        if p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            tracing::warn!(
                file = name,
                "a prompt file must be a path inside the prompts folder"
            );
            return None;
        }
        let key = format!("file:{name}");
        if let Some(c) = self.cached(&key) {
            return Some(c);
        }
        let bytes = tokio::fs::read(self.base.join(p)).await.ok()?;
        let c = samples_of(&bytes)?;
        self.keep(key, c.clone());
        Some(c)
    }

    /// `text` spoken by `voice`, rendered once and cached.
    pub async fn speak(&self, voice: &str, text: &str) -> Option<Arc<[i16]>> {
        let key = tts_key(voice, text);
        if let Some(c) = self.cached(&key) {
            return Some(c);
        }
        let path = self.dir.join(format!("tts-{key}.wav"));
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(_) => {
                let b = render(voice, text).await?;
                if tokio::fs::create_dir_all(&self.dir).await.is_ok() {
                    // Written aside, then renamed: a reader never sees half a file.
                    let tmp = self.dir.join(format!("tts-{key}.tmp"));
                    if tokio::fs::write(&tmp, &b).await.is_ok() {
                        let _ = tokio::fs::rename(&tmp, &path).await;
                    }
                }
                b
            }
        };
        let c = samples_of(&bytes)?;
        self.keep(key, c.clone());
        Some(c)
    }

    fn cached(&self, key: &str) -> Option<Arc<[i16]>> {
        self.cache.lock().ok()?.get(key).cloned()
    }

    fn keep(&self, key: String, c: Arc<[i16]>) {
        if let Ok(mut m) = self.cache.lock() {
            if m.len() >= MEMORY_CACHE {
                m.clear();
            }
            m.insert(key, c);
        }
    }
}

/// Runs `espeak-ng` (a process, off the engine tasks) and returns its WAV.
async fn render(voice: &str, text: &str) -> Option<Vec<u8>> {
    let out = tokio::process::Command::new("espeak-ng")
        .arg("-v")
        .arg(voice)
        .arg("--stdout")
        .arg("--")
        .arg(text)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => Some(o.stdout),
        Ok(o) => {
            tracing::warn!(status = %o.status, "espeak-ng failed; the prompt is not played");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "espeak-ng is not installed (apt-get install espeak-ng); prompts are not spoken");
            None
        }
    }
}

fn load_moh(dir: &Path) -> Option<Arc<[i16]>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        if let Ok(b) = std::fs::read(&f)
            && let Some(s) = samples_of(&b)
        {
            all.extend_from_slice(&s);
        }
    }
    if all.is_empty() {
        tracing::warn!(dir = %dir.display(), "no usable WAV files for music on hold; playing the default");
        return None;
    }
    Some(all.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_and_keys() {
        assert_eq!(voice_of("ar"), "ar");
        assert_eq!(voice_of("fa-IR"), "fa");
        assert_eq!(voice_of("de"), "en");
        assert_ne!(tts_key("en", "hello"), tts_key("ar", "hello"));
        assert_eq!(tts_key("en", "hello"), tts_key("en", "hello"));
        assert_eq!(tts_key("en", "hello").len(), 64);
    }

    /// Needs Debian's espeak-ng (`./scripts/test.sh` installs it): without it this fails.
    #[tokio::test]
    async fn text_is_spoken_once_and_then_read_from_the_cache() {
        assert!(
            std::process::Command::new("espeak-ng")
                .arg("--version")
                .output()
                .is_ok(),
            "espeak-ng (Debian package espeak-ng) is installed"
        );
        let dir = std::env::temp_dir().join(format!("sb-prompts-{}", std::process::id()));
        let p = Prompts::new(&dir, None);
        let a = p.speak("en", "Welcome to the demo.").await.expect("spoken");
        // About a second of speech at 8 kHz, and not silence.
        assert!((4000..40000).contains(&a.len()), "{}", a.len());
        assert!(a.iter().filter(|s| s.abs() > 1000).count() > 500);
        let file = dir
            .join("prompts")
            .join(format!("tts-{}.wav", tts_key("en", "Welcome to the demo.")));
        assert!(file.exists(), "cached on disk");
        let again = Prompts::new(&dir, None);
        assert_eq!(again.speak("en", "Welcome to the demo.").await, Some(a));
        assert!(
            p.clip("en", "x", Some("../etc/passwd")).await.is_some(),
            "falls back to the text"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
