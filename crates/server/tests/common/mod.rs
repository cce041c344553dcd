//! End-to-end harness: starts the real `switchboard` binary on a fresh data directory with an
//! OS-chosen port, reads the port from its start-up line, and talks HTTP and WebSocket to it.
#![allow(dead_code)] // each test file uses a different part of the harness

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server process.
pub struct Server {
    child: Child,
    pub base: String,
    /// The SIP address (UDP and TCP) from the `sip=` start-up line.
    pub sip: Option<std::net::SocketAddr>,
    /// The SMTP address from the `smtp=` start-up line.
    pub smtp: Option<std::net::SocketAddr>,
    pub data: PathBuf,
    pub http: reqwest::Client,
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "switchboard-test-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    /// Starts `switchboard serve` on `data` with extra arguments and environment.
    pub fn start_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.arg("serve")
            .args(args)
            .env("SWITCHBOARD_HTTP", "127.0.0.1:0")
            .env("SWITCHBOARD_SIP", "127.0.0.1:0")
            .env("SWITCHBOARD_SMTP", "127.0.0.1:0")
            .env_remove("SWITCHBOARD_SMTP_RELAY")
            // No test asks the machine's resolver: those that verify mail bring their own DNS.
            .env("SWITCHBOARD_DNS", "off")
            .env("SWITCHBOARD_DATA", data)
            .env("SWITCHBOARD_LOG", "warn")
            .env_remove("SWITCHBOARD_DATABASE_URL")
            .env_remove("SWITCHBOARD_NATS")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data.join("server.log"))
                    .expect("open server.log"),
            ));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                for key in ["http", "smtp", "sip"] {
                    if let Some(addr) = line.strip_prefix(key).and_then(|l| l.strip_prefix('=')) {
                        let _ = tx.send((key, addr.to_owned()));
                    }
                }
            }
        });
        let mut addr = None;
        let mut sip = None;
        let mut smtp = None;
        // `sip=` follows `http=` at once; wait for both, but a build without SIP only has http.
        while sip.is_none() {
            let timeout = if addr.is_some() { 2 } else { 60 };
            match rx.recv_timeout(Duration::from_secs(timeout)) {
                Ok(("http", a)) => addr = Some(a),
                Ok(("smtp", a)) => smtp = a.parse().ok(),
                Ok((_, a)) => sip = a.parse().ok(),
                Err(_) => break,
            }
        }
        let addr = addr.expect("server printed http=HOST:PORT");
        Server {
            child,
            base: format!("http://{addr}"),
            sip,
            smtp,
            data: data.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    /// Starts with the demo tenant.
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[], &[])
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().expect("wait");
        status.code()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Logs in; panics unless 200.
    pub async fn login(&self, username: &str, password: &str) -> Session {
        let r = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request");
        assert_eq!(r.status(), 200, "login {username}");
        let v: Value = r.json().await.expect("login json");
        Session {
            token: v["token"].as_str().expect("token").to_owned(),
            user: v["user"].clone(),
            http: self.http.clone(),
            base: self.base.clone(),
        }
    }
}

impl Server {
    /// Everything the server wrote to stderr (its log) so far, across restarts on this data dir.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- server log (last lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A logged-in caller.
#[derive(Clone)]
pub struct Session {
    pub token: String,
    pub user: Value,
    pub http: reqwest::Client,
    pub base: String,
}

/// A response: status and JSON body (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an error status and code.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error message present: {}",
            self.body
        );
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp { status, body }
}

impl Session {
    pub fn agent_id(&self) -> String {
        self.user["agent_id"].as_str().expect("agent id").to_owned()
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Resp {
        send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        send(self.req(reqwest::Method::POST, path).json(&body)).await
    }

    /// POSTs raw bytes with a content type (uploads).
    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        send(
            self.req(reqwest::Method::POST, path)
                .header("Content-Type", content_type)
                .body(body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        send(self.req(reqwest::Method::PATCH, path).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        send(self.req(reqwest::Method::PUT, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        send(self.req(reqwest::Method::DELETE, path)).await
    }

    /// Sets the caller's own agent state.
    pub async fn set_state(&self, state: &str) {
        self.put(
            &format!("/api/v1/agents/{}/state", self.agent_id()),
            json!({"state": state}),
        )
        .await
        .expect(200);
    }

    /// Creates a task in a queue (by name or id); returns the interaction.
    pub async fn task(&self, queue: &str, subject: &str) -> Value {
        self.post(
            "/api/v1/interactions",
            json!({"queue": queue, "subject": subject}),
        )
        .await
        .expect(201)
    }

    /// Polls an interaction until `pred` holds (events are asynchronous to other callers).
    pub async fn wait_for(&self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let v = self
                .get(&format!("/api/v1/interactions/{id}"))
                .await
                .expect(200);
            if pred(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("interaction {id} never reached the expected state");
    }
}

/// The `type`s of an interaction's events, in order.
pub fn event_types(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}
