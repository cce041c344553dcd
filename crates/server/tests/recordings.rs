//! Call recordings against the real binary: a real call (SIPp caller on the demo trunk, agent1's
//! SIPp phone answering), a real stereo WAV (made with `switchboard_media::wav`'s recorder)
//! imported for it through the same begin/finish path the live call side uses, then listing,
//! downloading (bytes, header, ranges), roles, tenants, deletion, the retention sweep, and the
//! live controls answering `409 no_live_media` where no call media is live.
//! SIPp missing is a failure, not a skip: `./scripts/test.sh` installs it.

mod common;
mod helpers;
mod sipkit;

use common::{Server, Session, TempDir, event_types, send};
use helpers::admin_create;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sipkit::{Phone, scenario, sipp};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchboard_media::wav;

/// Registers `user`'s phone and gives the port back for the SIPp phone that takes it over.
fn register_phone(sip: SocketAddr, user: &str) -> u16 {
    let mut phone = Phone::of(user, "127.0.0.1", sip);
    let r = phone.register_sha256("agent");
    assert_eq!(r.status.as_u16(), 200, "{user} registers: {r:?}");
    phone.socket.local_addr().expect("local").port()
}

fn spawn_phone(port: u16, work: &Path) -> Child {
    Command::new("sipp")
        .arg("-sf")
        .arg(scenario("agent_answer.xml"))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
        .args(["-m", "1", "-timeout", "60s", "-trace_err"])
        .current_dir(work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sipp (Debian package sip-tester; ./scripts/test.sh installs it)")
}

fn finish_phone(mut child: Child) {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "agent1's SIPp phone failed ({status})");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("agent1's phone did not finish within 30 s");
}

/// One real call to the demo number 1001 (queue support) that agent1's phone answers; the
/// caller hangs up after a second. Returns the interaction id, once it has ended.
async fn one_call(s: &Server, admin: &Session, work: &Path) -> String {
    let sip = s.sip.expect("sip address");
    s.login("agent1", "agent")
        .await
        .set_state("available")
        .await;
    let port = register_phone(sip, "agent1");
    let phone = spawn_phone(port, work);
    sipp(
        sip,
        "caller.xml",
        "127.0.0.1",
        &["-s", "1001", "-m", "1", "-d", "1000"],
        work,
    );
    finish_phone(phone);
    let list = admin
        .get("/api/v1/interactions?channel=voice")
        .await
        .expect(200);
    let id = list[0]["id"]
        .as_str()
        .expect("a voice interaction")
        .to_owned();
    admin.wait_for(&id, |v| v["state"] == "ended").await;
    id
}

/// A stereo recording of `ms` milliseconds made by the recorder the media task uses: a
/// distinct ramp on each channel (caller left, agent right) so that a swap or an offset shows.
fn stereo_wav(ms: usize) -> (Vec<u8>, Vec<i16>) {
    let frames = ms * 8;
    let caller: Vec<i16> = (0..frames).map(|i| (i % 2000) as i16 * 7).collect();
    let agent: Vec<i16> = (0..frames).map(|i| -((i % 1500) as i16) * 11).collect();
    let mut rec = wav::Recorder::new();
    let mut data = Vec::new();
    rec.push(&caller, &agent, &mut data);
    let mut file = rec.header().to_vec();
    file.extend_from_slice(&data);
    let interleaved = caller
        .iter()
        .zip(&agent)
        .flat_map(|(l, r)| [*l, *r])
        .collect();
    (file, interleaved)
}

fn hex_sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// `POST /api/v1/interactions/{id}/recordings` with a WAV body.
async fn import(who: &Session, it: &str, query: &str, body: Vec<u8>, ctype: &str) -> common::Resp {
    send(
        who.http
            .post(format!(
                "{}/api/v1/interactions/{it}/recordings{query}",
                who.base
            ))
            .bearer_auth(&who.token)
            .header("content-type", ctype)
            .body(body),
    )
    .await
}

async fn download(who: &Session, rec: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = who
        .http
        .get(format!("{}/api/v1/recordings/{rec}/audio", who.base))
        .bearer_auth(&who.token);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.expect("download")
}

fn rfc3339_ago(days: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days);
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[tokio::test]
async fn a_calls_recording_is_listed_downloaded_and_deleted_by_the_roles_allowed() {
    let dir = TempDir::new("recordings");
    let s = Server::start(&dir.0);
    let work = TempDir::new("recordings-sipp");
    let admin = s.login("admin", "admin").await;
    let supervisor = s.login("supervisor", "supervisor").await;
    let agent1 = s.login("agent1", "agent").await;
    let agent2 = s.login("agent2", "agent").await;

    // The demo's support queue records every call; other queues none, new ones none.
    let queues = admin.get("/api/v1/queues").await.expect(200);
    let policy = |name: &str| {
        queues
            .as_array()
            .expect("queues")
            .iter()
            .find(|q| q["name"] == name)
            .map(|q| q["recording"].clone())
            .expect("queue")
    };
    assert_eq!(
        policy("support"),
        json!({"policy": "all", "percent": 0, "retention_days": 90})
    );
    assert_eq!(policy("sales")["policy"], "none");
    let q = admin
        .post("/api/v1/queues", json!({"name": "quality"}))
        .await
        .expect(201);
    assert_eq!(q["recording"]["policy"], "none");
    let qid = q["id"].as_str().expect("id");
    let v = admin
        .patch(
            &format!("/api/v1/queues/{qid}"),
            json!({"recording": {"policy": "percent", "percent": 25, "retention_days": 30}}),
        )
        .await
        .expect(200);
    assert_eq!(v["recording"]["percent"], 25);
    admin
        .patch(
            &format!("/api/v1/queues/{qid}"),
            json!({"recording": {"policy": "percent", "percent": 250}}),
        )
        .await
        .expect_error(422, "invalid_value");
    admin
        .patch(
            &format!("/api/v1/queues/{qid}"),
            json!({"recording": {"policy": "sometimes"}}),
        )
        .await
        .expect_error(422, "invalid_body");

    // The OpenAPI document lists the routes with their methods.
    let doc = send(s.http.get(s.url("/openapi.json"))).await.expect(200);
    for (p, methods) in [
        ("/api/v1/interactions/{id}/recordings", &["get", "post"][..]),
        ("/api/v1/recordings/{id}", &["get", "delete"]),
        ("/api/v1/recordings/{id}/audio", &["get"]),
        ("/api/v1/interactions/{id}/recording/pause", &["post"]),
        ("/api/v1/interactions/{id}/recording/resume", &["post"]),
        ("/api/v1/interactions/{id}/recording/start", &["post"]),
    ] {
        for m in methods {
            assert!(doc["paths"][p].get(m).is_some(), "{m} {p} in openapi.json");
        }
    }

    let it = one_call(&s, &admin, &work.0).await;

    // The call itself was recorded live (the demo's support queue records every call).
    let live = agent1
        .poll(
            &format!("/api/v1/interactions/{it}/recordings"),
            Duration::from_secs(10),
            |v| v[0]["state"] == "complete",
        )
        .await;
    assert_eq!(live.as_array().map(Vec::len), Some(1), "{live}");
    assert_eq!(live[0]["channels"], 2);
    let live_ms = live[0]["duration_ms"].as_u64().expect("duration");
    assert!(
        (900..3000).contains(&live_ms),
        "the caller hung up after about a second: {live_ms} ms"
    );
    let live_id = live[0]["id"].as_str().expect("id").to_owned();

    // Import a real stereo WAV for the call: only admins, only WAV, only stereo 8 kHz.
    let (file, samples) = stereo_wav(1500);
    import(&supervisor, &it, "", file.clone(), "audio/wav")
        .await
        .expect_error(403, "forbidden");
    import(&admin, &it, "", file.clone(), "application/json")
        .await
        .expect_error(415, "unsupported_media_type");
    import(&admin, &it, "", b"RIFF nonsense".to_vec(), "audio/wav")
        .await
        .expect_error(422, "invalid_value");
    let mut mono = wav::header(1, 8000, 16).to_vec();
    mono.extend_from_slice(&[0u8; 16]);
    import(&admin, &it, "", mono, "audio/wav")
        .await
        .expect_error(422, "invalid_value");
    import(
        &admin,
        &it,
        "?started_at=2999-01-01T00:00:00Z",
        file.clone(),
        "audio/wav",
    )
    .await
    .expect_error(422, "invalid_value");
    let started = rfc3339_ago(1);
    let rec = import(
        &admin,
        &it,
        &format!("?started_at={started}"),
        file.clone(),
        "audio/wav",
    )
    .await
    .expect(201);
    let rid = rec["id"].as_str().expect("recording id").to_owned();
    assert_eq!(rec["interaction_id"], it.as_str());
    assert_eq!(rec["state"], "complete");
    assert_eq!(rec["format"], "wav");
    assert_eq!(rec["channels"], 2);
    assert_eq!(rec["sample_rate"], 8000);
    assert_eq!(rec["duration_ms"], 1500);
    assert_eq!(rec["size_bytes"], file.len());
    assert_eq!(rec["sha256"], hex_sha256(&file));
    assert_eq!(rec["started_at"], started);
    assert_eq!(rec["paused_spans"], json!([]));
    assert_eq!(rec["audio_url"], format!("/api/v1/recordings/{rid}/audio"));
    // retention: the support queue's 90 days from the end
    let ended = jiff::Timestamp::from_millisecond(
        started
            .parse::<jiff::Timestamp>()
            .expect("t")
            .as_millisecond()
            + 1500,
    )
    .expect("t");
    let until: jiff::Timestamp = rec["retain_until"]
        .as_str()
        .expect("retain_until")
        .parse()
        .expect("t");
    assert_eq!(
        until.as_millisecond() - ended.as_millisecond(),
        90 * 86_400_000
    );
    // the file is where the docs say: <data>/recordings/<tenant>/<yyyy>/<mm>/<id>.wav
    let tenant = admin.user["tenant"].as_str().expect("tenant");
    let ym = started
        .parse::<jiff::Timestamp>()
        .expect("t")
        .strftime("%Y/%m")
        .to_string();
    let on_disk = dir.0.join(format!("recordings/{tenant}/{ym}/{rid}.wav"));
    assert_eq!(std::fs::read(&on_disk).expect("recording file"), file);

    // The interaction's events carry the recording.
    let v = admin
        .get(&format!("/api/v1/interactions/{it}"))
        .await
        .expect(200);
    let types = event_types(&v);
    assert!(types.contains(&"recording.started".to_owned()), "{types:?}");
    let done = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "recording.completed" && e["data"]["recording_id"] == rid.as_str())
        .expect("recording.completed of the import");
    assert_eq!(done["data"]["sha256"], hex_sha256(&file));

    // Listed and read by supervisors, admins and agent1 (who handled the call)...
    for who in [&admin, &supervisor, &agent1] {
        let list = who
            .get(&format!("/api/v1/interactions/{it}/recordings"))
            .await
            .expect(200);
        assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
        let ids: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert!(
            ids.contains(&live_id.as_str()) && ids.contains(&rid.as_str()),
            "{list}"
        );
        who.get(&format!("/api/v1/recordings/{rid}"))
            .await
            .expect(200);
    }
    // ...not by agent2, who did not
    agent2
        .get(&format!("/api/v1/interactions/{it}/recordings"))
        .await
        .expect_error(403, "forbidden");
    agent2
        .get(&format!("/api/v1/recordings/{rid}"))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(download(&agent2, &rid, None).await.status(), 403);

    // The download is the WAV: type, length, bytes, and a stereo 8 kHz header.
    let r = download(&agent1, &rid, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert_eq!(
        r.headers()["content-length"],
        file.len().to_string().as_str()
    );
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let bytes = r.bytes().await.expect("audio");
    assert_eq!(bytes.as_ref(), file.as_slice());
    let w = wav::parse(&bytes).expect("a WAV file");
    assert_eq!((w.channels, w.rate), (2, 8000));
    assert_eq!(
        w.samples, samples,
        "caller left, agent right, sample for sample"
    );
    // ranges: the header alone, the last frame, and one past the end
    let r = download(&supervisor, &rid, Some("bytes=0-43")).await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-43/{}", file.len()).as_str()
    );
    assert_eq!(r.bytes().await.expect("range").as_ref(), &file[..44]);
    let r = download(&supervisor, &rid, Some("bytes=-4")).await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.bytes().await.expect("range").as_ref(),
        &file[file.len() - 4..]
    );
    let r = download(&supervisor, &rid, Some(&format!("bytes={}-", file.len()))).await;
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{}", file.len()).as_str()
    );

    // Another tenant sees none of it: 404 everywhere, as if it did not exist.
    admin_create(&dir.0, "acme", "acme-admin", "longpassword", "admin");
    let acme = s.login("acme-admin", "longpassword").await;
    for path in [
        format!("/api/v1/recordings/{rid}"),
        format!("/api/v1/recordings/{rid}/audio"),
        format!("/api/v1/interactions/{it}/recordings"),
    ] {
        acme.get(&path).await.expect_error(404, "not_found");
    }
    acme.delete(&format!("/api/v1/recordings/{rid}"))
        .await
        .expect_error(404, "not_found");
    import(&acme, &it, "", file.clone(), "audio/wav")
        .await
        .expect_error(404, "not_found");
    for action in ["pause", "resume", "start"] {
        acme.post(
            &format!("/api/v1/interactions/{it}/recording/{action}"),
            json!({}),
        )
        .await
        .expect_error(404, "not_found");
    }
    assert!(on_disk.exists(), "another tenant's delete removed nothing");

    // Pause, resume and start need a live call: this one has ended.
    for action in ["pause", "resume", "start"] {
        let path = format!("/api/v1/interactions/{it}/recording/{action}");
        supervisor
            .post(&path, json!({}))
            .await
            .expect_error(409, "no_live_media");
        agent2
            .post(&path, json!({}))
            .await
            .expect_error(403, "forbidden");
    }
    // and a task has no call media at all, nor recordings to import
    let task = admin.task("support", "not a call").await;
    let task = task["id"].as_str().expect("id");
    supervisor
        .post(
            &format!("/api/v1/interactions/{task}/recording/pause"),
            json!({}),
        )
        .await
        .expect_error(409, "no_live_media");
    import(&admin, task, "", file.clone(), "audio/wav")
        .await
        .expect_error(409, "not_a_call");

    // Delete: admins only; the file goes, the row stays as deleted, the log says who.
    supervisor
        .delete(&format!("/api/v1/recordings/{rid}"))
        .await
        .expect_error(403, "forbidden");
    assert!(on_disk.exists());
    admin
        .delete(&format!("/api/v1/recordings/{rid}"))
        .await
        .expect(204);
    assert!(!on_disk.exists(), "the file is removed");
    let v = agent1
        .get(&format!("/api/v1/recordings/{rid}"))
        .await
        .expect(200);
    assert_eq!(v["state"], "deleted");
    assert_eq!(
        v["deleted_by"],
        format!("admin:{}", admin.user["id"].as_str().expect("id"))
    );
    assert_eq!(v["audio_url"], Value::Null);
    assert_eq!(v["sha256"], hex_sha256(&file), "the metadata is kept");
    assert_eq!(download(&agent1, &rid, None).await.status(), 410);
    admin
        .delete(&format!("/api/v1/recordings/{rid}"))
        .await
        .expect_error(409, "wrong_state");
    let v = admin
        .get(&format!("/api/v1/interactions/{it}"))
        .await
        .expect(200);
    let deleted = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "recording.deleted")
        .expect("recording.deleted");
    assert_eq!(
        deleted["data"]["by"],
        format!("admin:{}", admin.user["id"].as_str().expect("id"))
    );
}

#[tokio::test]
async fn the_retention_sweep_deletes_recordings_past_their_queues_days() {
    let dir = TempDir::new("recordings-retention");
    let config = dir.0.join("switchboard.toml");
    std::fs::write(&config, "[recordings]\nsweep_interval_s = 1\n").expect("config");
    let s = Server::start_with(&dir.0, &["--config", config.to_str().expect("path")], &[]);
    let work = TempDir::new("recordings-retention-sipp");
    let admin = s.login("admin", "admin").await;
    let it = one_call(&s, &admin, &work.0).await;
    let support = admin.get("/api/v1/queues").await.expect(200);
    let support = support
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "support")
        .and_then(|q| q["id"].as_str())
        .expect("support")
        .to_owned();

    let (file, _) = stereo_wav(200);
    let mut ids = Vec::new();
    for days_ago in [10, 3] {
        let r = import(
            &admin,
            &it,
            &format!("?started_at={}", rfc3339_ago(days_ago)),
            file.clone(),
            "audio/wav",
        )
        .await
        .expect(201);
        ids.push(r["id"].as_str().expect("id").to_owned());
    }
    let path_of = |id: &str| {
        let mut found = None;
        for e in walk(&dir.0.join("recordings")) {
            if e.file_name().and_then(|n| n.to_str()) == Some(&format!("{id}.wav")) {
                found = Some(e);
            }
        }
        found.expect("recording file")
    };
    let (old, recent) = (path_of(&ids[0]), path_of(&ids[1]));
    // Both within the queue's 90 days: the sweep (every second) keeps them.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for id in &ids {
        let v = admin
            .get(&format!("/api/v1/recordings/{id}"))
            .await
            .expect(200);
        assert_eq!(v["state"], "complete", "{v}");
    }

    // Five days of retention now: it applies to the recordings already made, and the sweep
    // deletes the one from ten days ago, keeping the one from three.
    admin
        .patch(
            &format!("/api/v1/queues/{support}"),
            json!({"recording": {"policy": "all", "retention_days": 5}}),
        )
        .await
        .expect(200);
    let v = admin
        .poll(
            &format!("/api/v1/recordings/{}", ids[0]),
            Duration::from_secs(10),
            |v| v["state"] == "deleted",
        )
        .await;
    assert_eq!(v["deleted_by"], "retention");
    assert!(!old.exists(), "the expired file is removed");
    let kept = admin
        .get(&format!("/api/v1/recordings/{}", ids[1]))
        .await
        .expect(200);
    assert_eq!(kept["state"], "complete");
    assert!(recent.exists());
    let v = admin
        .get(&format!("/api/v1/interactions/{it}"))
        .await
        .expect(200);
    let by: Vec<&Value> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "recording.deleted")
        .map(|e| &e["data"]["by"])
        .collect();
    assert_eq!(by, [&json!("retention")]);

    // Zero days keeps recordings, however old.
    admin
        .patch(
            &format!("/api/v1/queues/{support}"),
            json!({"recording": {"policy": "all", "retention_days": 0}}),
        )
        .await
        .expect(200);
    let ancient = import(
        &admin,
        &it,
        &format!("?started_at={}", rfc3339_ago(400)),
        file.clone(),
        "audio/wav",
    )
    .await
    .expect(201);
    assert_eq!(ancient["retain_until"], Value::Null);
    let kept = admin
        .get(&format!("/api/v1/recordings/{}", ids[1]))
        .await
        .expect(200);
    assert_eq!(kept["retain_until"], Value::Null);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let id = ancient["id"].as_str().expect("id");
    let v = admin
        .get(&format!("/api/v1/recordings/{id}"))
        .await
        .expect(200);
    assert_eq!(v["state"], "complete");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
