//! Auth, roles and every error path of the API, against the real binary.

mod common;

use common::{Server, TempDir, send};
use serde_json::json;

#[tokio::test]
async fn login_roles_and_tokens() {
    let dir = TempDir::new("auth");
    let s = Server::start(&dir.0);

    // wrong credentials: 401 with the error shape, no hint which part was wrong
    let r = send(
        s.http
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "nope"})),
    )
    .await;
    r.expect_error(401, "unauthorized");
    let r = send(
        s.http
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": "ghost", "password": "admin"})),
    )
    .await;
    r.expect_error(401, "unauthorized");

    let admin = s.login("admin", "admin").await;
    assert_eq!(admin.user["role"], "admin");
    let sup = s.login("supervisor", "supervisor").await;
    let agent = s.login("agent1", "agent").await;
    assert_eq!(agent.user["role"], "agent");
    assert!(agent.user["agent_id"].is_string());

    // missing and bad tokens: 401
    send(s.http.get(s.url("/api/v1/queues")))
        .await
        .expect_error(401, "unauthorized");
    send(
        s.http
            .get(s.url("/api/v1/queues"))
            .bearer_auth("not-a-token"),
    )
    .await
    .expect_error(401, "unauthorized");
    send(
        s.http
            .get(s.url("/api/v1/queues"))
            .header("authorization", "Basic YWRtaW46YWRtaW4="),
    )
    .await
    .expect_error(401, "unauthorized");

    // roles: agent < supervisor < admin
    agent
        .post("/api/v1/skills", json!({"name": "x"}))
        .await
        .expect_error(403, "forbidden");
    sup.post("/api/v1/skills", json!({"name": "x"}))
        .await
        .expect_error(403, "forbidden");
    admin
        .post("/api/v1/skills", json!({"name": "x"}))
        .await
        .expect(201);
    agent
        .get("/api/v1/users")
        .await
        .expect_error(403, "forbidden");
    sup.get("/api/v1/users")
        .await
        .expect_error(403, "forbidden");
    admin.get("/api/v1/users").await.expect(200);
    agent
        .get("/api/v1/stats/realtime")
        .await
        .expect_error(403, "forbidden");
    sup.get("/api/v1/stats/realtime").await.expect(200);
    agent
        .post(
            "/api/v1/interactions",
            json!({"queue": "sales", "subject": "s"}),
        )
        .await
        .expect_error(403, "forbidden");
    sup.post(
        "/api/v1/interactions",
        json!({"queue": "sales", "subject": "s"}),
    )
    .await
    .expect(201);
    // reading configuration is open to every role
    agent.get("/api/v1/queues").await.expect(200);

    // an agent sets its own state, not another agent's; a supervisor sets anyone's
    let agent2 = s.login("agent2", "agent").await;
    agent
        .put(
            &format!("/api/v1/agents/{}/state", agent2.agent_id()),
            json!({"state": "available"}),
        )
        .await
        .expect_error(403, "forbidden");
    sup.put(
        &format!("/api/v1/agents/{}/state", agent2.agent_id()),
        json!({"state": "break", "reason": "training"}),
    )
    .await
    .expect(200);
    let st = agent2
        .get(&format!("/api/v1/agents/{}/state", agent2.agent_id()))
        .await
        .expect(200);
    assert_eq!(st["state"], "break");
    assert_eq!(st["reason"], "training");

    // /auth/me and logout
    assert_eq!(
        agent.get("/api/v1/auth/me").await.expect(200)["username"],
        "agent1"
    );
    agent
        .post("/api/v1/auth/logout", json!({}))
        .await
        .expect(204);
    agent
        .get("/api/v1/auth/me")
        .await
        .expect_error(401, "unauthorized");

    // passwords are stored as argon2 hashes, never in clear
    // (the WAL file holds recent pages until a checkpoint)
    let mut db = std::fs::read(dir.0.join("switchboard.db")).expect("db file");
    db.extend(std::fs::read(dir.0.join("switchboard.db-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&db);
    assert!(text.contains("$argon2id$"), "argon2 hashes stored");
    assert!(!text.contains("\"supervisor\",\"supervisor\""));
}

#[tokio::test]
async fn tokens_expire() {
    let dir = TempDir::new("expiry");
    let cfg = dir.0.join("c.toml");
    std::fs::write(&cfg, "[auth]\nsession_ttl_s = 1\n").expect("config");
    let s = Server::start_with(&dir.0, &["--config", cfg.to_str().expect("utf8")], &[]);
    let admin = s.login("admin", "admin").await;
    admin.get("/api/v1/queues").await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    admin
        .get("/api/v1/queues")
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn login_is_rate_limited_per_user_and_per_address() {
    let dir = TempDir::new("ratelimit");
    let cfg = dir.0.join("c.toml");
    std::fs::write(
        &cfg,
        "[auth]\nlogin_failures_per_user = 3\nlogin_failures_per_ip = 6\nlogin_window_s = 60\n",
    )
    .expect("config");
    let s = Server::start_with(&dir.0, &["--config", cfg.to_str().expect("utf8")], &[]);
    let attempt = |u: &'static str, p: &'static str| {
        send(
            s.http
                .post(s.url("/api/v1/auth/login"))
                .json(&json!({"username": u, "password": p})),
        )
    };
    for _ in 0..3 {
        attempt("agent1", "wrong")
            .await
            .expect_error(401, "unauthorized");
    }
    // the user is blocked, even with the right password, and told when to retry
    let r = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "agent1", "password": "agent"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=61).contains(&retry), "retry-after {retry}");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_requests");
    // another user is still fine until the address reaches its own limit
    s.login("agent2", "agent").await;
    for _ in 0..3 {
        attempt("agent3", "wrong")
            .await
            .expect_error(401, "unauthorized");
    }
    attempt("supervisor", "supervisor")
        .await
        .expect_error(429, "too_many_requests");
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_errors() {
    let dir = TempDir::new("errors");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let raw = |body: &'static str| {
        s.http
            .post(s.url("/api/v1/skills"))
            .bearer_auth(&admin.token)
            .header("content-type", "application/json")
            .body(body)
    };
    send(raw("{\"name\": "))
        .await
        .expect_error(400, "invalid_json");
    send(raw("not json at all"))
        .await
        .expect_error(400, "invalid_json");
    send(raw("{\"name\": \"ok\", \"colour\": \"red\"}"))
        .await
        .expect_error(422, "invalid_body");
    send(raw("{\"name\": 42}"))
        .await
        .expect_error(422, "invalid_body");
    send(raw("[]")).await.expect_error(422, "invalid_body");
    send(
        s.http
            .post(s.url("/api/v1/skills"))
            .bearer_auth(&admin.token)
            .body("{\"name\":\"x\"}"),
    )
    .await
    .expect_error(400, "missing_content_type");
    // oversize body
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    // (a fresh client: the server closes a connection whose body it refused to read)
    send(
        reqwest::Client::new()
            .post(s.url("/api/v1/skills"))
            .bearer_auth(&admin.token)
            .header("content-type", "application/json")
            .body(big),
    )
    .await
    .expect_error(413, "payload_too_large");
    // bad ids, unknown ids, unknown routes and methods
    admin
        .get("/api/v1/queues/not-a-uuid")
        .await
        .expect_error(400, "invalid_id");
    admin
        .get("/api/v1/queues/01a2134f-e4a8-73c3-aec0-51d3da99653c")
        .await
        .expect_error(404, "not_found");
    admin
        .get("/api/v1/interactions/01a2134f-e4a8-73c3-aec0-51d3da99653c")
        .await
        .expect_error(404, "not_found");
    admin
        .get("/api/v1/nothing-here")
        .await
        .expect_error(404, "no_route");
    admin
        .delete("/api/v1/auth/login")
        .await
        .expect_error(405, "method_not_allowed");
    admin
        .get("/api/v1/interactions?state=flying")
        .await
        .expect_error(400, "invalid_query");
    admin
        .get("/api/v1/interactions?color=red")
        .await
        .expect_error(400, "invalid_query");
    // validation of values names the field
    let r = admin
        .post("/api/v1/queues", json!({"name": "q", "offer_timeout_s": 0}))
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("offer_timeout_s")
    );
    admin.post("/api/v1/queues", json!({"name": "q", "required_skills": [{"skill": "01a2134f-e4a8-73c3-aec0-51d3da99653c"}]})).await.expect_error(422, "invalid_value");
    admin
        .post(
            "/api/v1/interactions",
            json!({"queue": "no-such-queue", "subject": "s"}),
        )
        .await
        .expect_error(422, "unknown_queue");
    admin
        .post(
            "/api/v1/interactions",
            json!({"queue": "sales", "subject": "s", "attributes": [1]}),
        )
        .await
        .expect_error(422, "invalid_value");
    admin
        .post(
            "/api/v1/users",
            json!({"username": "has space", "password": "longenough", "role": "agent"}),
        )
        .await
        .expect_error(422, "invalid_value");
    admin
        .post(
            "/api/v1/users",
            json!({"username": "short", "password": "abc", "role": "agent"}),
        )
        .await
        .expect_error(422, "invalid_value");
    admin
        .post(
            "/api/v1/users",
            json!({"username": "x", "password": "longenough", "role": "king"}),
        )
        .await
        .expect_error(422, "invalid_body");
    // duplicates
    admin
        .post("/api/v1/skills", json!({"name": "dup"}))
        .await
        .expect(201);
    admin
        .post("/api/v1/skills", json!({"name": "dup"}))
        .await
        .expect_error(409, "already_exists");
    admin
        .post(
            "/api/v1/users",
            json!({"username": "agent1", "password": "longenough", "role": "agent"}),
        )
        .await
        .expect_error(409, "already_exists");
    // state conflicts
    let t = admin.task("sales", "nobody is available").await;
    let id = t["id"].as_str().expect("id");
    let agent = s.login("agent1", "agent").await;
    agent
        .post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
        .await
        .expect_error(409, "wrong_state");
    admin
        .post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
        .await
        .expect_error(403, "forbidden");
    // still alive and well after all of it
    send(s.http.get(s.url("/healthz"))).await.expect(200);
}

#[tokio::test]
async fn health_openapi_and_metrics() {
    let dir = TempDir::new("meta");
    let s = Server::start(&dir.0);
    assert_eq!(
        send(s.http.get(s.url("/healthz"))).await.expect(200)["status"],
        "ok"
    );
    send(s.http.get(s.url("/readyz"))).await.expect(200);
    let doc = send(s.http.get(s.url("/openapi.json"))).await.expect(200);
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in [
        ("/api/v1/auth/login", &["post"][..]),
        ("/api/v1/auth/logout", &["post"]),
        ("/api/v1/auth/me", &["get"]),
        ("/api/v1/skills", &["get", "post"]),
        ("/api/v1/skills/{id}", &["get", "patch", "delete"]),
        ("/api/v1/queues", &["get", "post"]),
        ("/api/v1/queues/{id}", &["get", "patch", "delete"]),
        ("/api/v1/users", &["get", "post"]),
        ("/api/v1/users/{id}", &["get", "patch", "delete"]),
        ("/api/v1/agents", &["get", "post"]),
        ("/api/v1/agents/{id}", &["get", "patch", "delete"]),
        ("/api/v1/agents/{id}/state", &["get", "put"]),
        ("/api/v1/interactions", &["get", "post"]),
        ("/api/v1/interactions/{id}", &["get"]),
        ("/api/v1/interactions/{id}/accept", &["post"]),
        ("/api/v1/interactions/{id}/reject", &["post"]),
        ("/api/v1/interactions/{id}/end", &["post"]),
        ("/api/v1/interactions/{id}/transfer", &["post"]),
        ("/api/v1/customers", &["get", "post"]),
        ("/api/v1/customers/{id}", &["get"]),
        ("/api/v1/stats/realtime", &["get"]),
        ("/api/v1/events", &["get"]),
        ("/api/v1/email/preview", &["post"]),
    ] {
        let p = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} documented"));
        for m in methods {
            assert!(p.get(*m).is_some(), "{m} {path} documented");
        }
    }
    // Every documented route answers (401 without a token, not 404/405): doc and router agree.
    for (path, item) in paths {
        let concrete = path.replace("{id}", "01a2134f-e4a8-73c3-aec0-51d3da99653c");
        for m in item.as_object().expect("path item").keys() {
            let method: reqwest::Method = m.to_uppercase().parse().expect("method");
            let r = send(s.http.request(method, s.url(&concrete))).await;
            assert!(
                matches!(r.status, 401 | 400 | 415 | 422),
                "{m} {path} → {}",
                r.status
            );
        }
    }
    // a bit of traffic, then the metrics the issue names
    let admin = s.login("admin", "admin").await;
    let agent = s.login("agent1", "agent").await;
    agent.set_state("available").await;
    admin.task("support", "metrics").await;
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "switchboard_interactions{",
        "switchboard_interactions_created_total{channel=\"task\"}",
        "switchboard_routing_decisions_total{decision=\"offer\"}",
        "switchboard_offer_wait_seconds_bucket",
        "switchboard_engine_command_seconds_bucket",
    ] {
        assert!(text.contains(name), "metrics has {name}:\n{text}");
    }
}

#[tokio::test]
async fn the_last_admin_stays_and_query_tokens_only_open_the_event_stream() {
    let dir = TempDir::new("lastadmin");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let me = admin.user["id"].as_str().expect("id").to_owned();
    admin
        .patch(
            &format!("/api/v1/users/{me}"),
            json!({"role": "supervisor"}),
        )
        .await
        .expect_error(409, "last_admin");
    let other = admin
        .post(
            "/api/v1/users",
            json!({"username": "admin2", "password": "longenough", "role": "admin"}),
        )
        .await
        .expect(201);
    let other_id = other["id"].as_str().expect("id").to_owned();
    // with a second admin, demoting is fine; deleting the now-only admin is not
    admin
        .patch(
            &format!("/api/v1/users/{other_id}"),
            json!({"role": "supervisor"}),
        )
        .await
        .expect(200);
    let second = s.login("admin2", "longenough").await;
    second
        .get("/api/v1/users")
        .await
        .expect_error(403, "forbidden");
    admin
        .patch(
            &format!("/api/v1/users/{other_id}"),
            json!({"role": "admin"}),
        )
        .await
        .expect(200);
    let second = s.login("admin2", "longenough").await;
    admin
        .patch(
            &format!("/api/v1/users/{other_id}"),
            json!({"role": "agent"}),
        )
        .await
        .expect(200);
    admin
        .patch(
            &format!("/api/v1/users/{other_id}"),
            json!({"role": "admin"}),
        )
        .await
        .expect(200);
    second
        .delete(&format!("/api/v1/users/{me}"))
        .await
        .expect(204);
    admin
        .get("/api/v1/auth/me")
        .await
        .expect_error(401, "unauthorized");
    let users = second.get("/api/v1/users").await.expect(200);
    assert!(
        users
            .as_array()
            .expect("list")
            .iter()
            .all(|u| u["username"] != "admin")
    );
    // `?token=` is for the WebSocket only
    send(
        s.http
            .get(s.url(&format!("/api/v1/queues?token={}", second.token))),
    )
    .await
    .expect_error(401, "unauthorized");
}
