//! The flows API against the real binary: create, validation errors naming the node, versions,
//! roles, the chat flow setting.

mod common;

use common::{Server, TempDir};
use serde_json::{Value, json};

fn hello_flow(text: &str) -> Value {
    json!({"start": "hi", "nodes": {
        "hi": {"type": "say", "text": text, "next": "q"},
        "q": {"type": "queue", "queue": "support"}
    }})
}

#[tokio::test]
async fn flows_are_created_validated_versioned_and_deleted() {
    let dir = TempDir::new("flows-api");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;

    // The demo flows are there, demo-chat is the chat flow.
    let list = sup.get("/api/v1/flows").await.expect(200);
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, vec!["demo-chat", "demo-ivr", "demo-support"]);
    let settings = sup.get("/api/v1/flow-settings").await.expect(200);
    let demo_chat = list[0]["id"].as_str().expect("id");
    assert_eq!(settings["chat_flow"], demo_chat);

    let f = sup
        .post(
            "/api/v1/flows",
            json!({"name": "hello", "definition": hello_flow("v1")}),
        )
        .await
        .expect(201);
    let id = f["id"].as_str().expect("id").to_owned();
    assert_eq!(f["version"], 1);
    sup.post(
        "/api/v1/flows",
        json!({"name": "hello", "definition": hello_flow("again")}),
    )
    .await
    .expect_error(409, "already_exists");

    // Validation failures are 422 and name the node.
    let dangling =
        json!({"start": "hi", "nodes": {"hi": {"type": "say", "text": "x", "next": "nowhere"}}});
    let r = sup
        .post(
            "/api/v1/flows",
            json!({"name": "bad", "definition": dangling}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "invalid_flow");
    let msg = r.body["error"]["message"].as_str().expect("message");
    assert!(msg.contains("\"hi\"") && msg.contains("nowhere"), "{msg}");
    let bad_tz = json!({"start": "h", "nodes": {
        "h": {"type": "hours", "schedule": {"time_zone": "Atlantis/Capital", "open": []}, "open_next": "e", "closed_next": "e"},
        "e": {"type": "end"}}});
    let r = sup
        .put(
            &format!("/api/v1/flows/{id}"),
            json!({"definition": bad_tz}),
        )
        .await;
    assert_eq!(r.status, 422);
    let msg = r.body["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("\"h\"") && msg.contains("Atlantis/Capital"),
        "{msg}"
    );
    let bad_key = json!({"start": "m", "nodes": {
        "m": {"type": "menu", "prompt": "?", "options": [{"key": "x", "label": "X", "next": "m"}]}}});
    sup.post(
        "/api/v1/flows",
        json!({"name": "bad", "definition": bad_key}),
    )
    .await
    .expect_error(422, "invalid_flow");
    let looped = json!({"start": "a", "nodes": {
        "a": {"type": "set", "attributes": {}, "next": "b"},
        "b": {"type": "say", "text": "x", "next": "a"}}});
    sup.post(
        "/api/v1/flows",
        json!({"name": "bad", "definition": looped}),
    )
    .await
    .expect_error(422, "invalid_flow");
    sup.post(
        "/api/v1/flows",
        json!({"name": "bad", "definition": {"start": "x"}}),
    )
    .await
    .expect_error(422, "invalid_flow");

    // PUT makes a new version; both stay readable.
    let v2 = sup
        .put(
            &format!("/api/v1/flows/{id}"),
            json!({"definition": hello_flow("v2"), "name": "hello2"}),
        )
        .await
        .expect(200);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["name"], "hello2");
    assert_eq!(v2["definition"]["nodes"]["hi"]["text"], "v2");
    let got = sup.get(&format!("/api/v1/flows/{id}")).await.expect(200);
    assert_eq!(got["version"], 2);
    let versions = sup
        .get(&format!("/api/v1/flows/{id}/versions"))
        .await
        .expect(200);
    let vs: Vec<i64> = versions
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(vs, vec![1, 2]);
    assert_eq!(versions[0]["author_id"], sup.user["id"]);
    let v1 = sup
        .get(&format!("/api/v1/flows/{id}/versions/1"))
        .await
        .expect(200);
    assert_eq!(v1["definition"]["nodes"]["hi"]["text"], "v1");
    sup.get(&format!("/api/v1/flows/{id}/versions/3"))
        .await
        .expect_error(404, "not_found");

    // The chat flow setting takes only this tenant's flows; deleting the flow clears it.
    sup.put("/api/v1/flow-settings", json!({"chat_flow": "nope"}))
        .await
        .expect_error(422, "unknown_flow");
    sup.put("/api/v1/flow-settings", json!({"chat_flow": id}))
        .await
        .expect(200);
    sup.delete(&format!("/api/v1/flows/{id}")).await.expect(204);
    sup.get(&format!("/api/v1/flows/{id}"))
        .await
        .expect_error(404, "not_found");
    sup.get(&format!("/api/v1/flows/{id}/versions"))
        .await
        .expect_error(404, "not_found");
    let settings = sup.get("/api/v1/flow-settings").await.expect(200);
    assert_eq!(settings["chat_flow"], Value::Null);
}

#[tokio::test]
async fn agents_read_flows_supervisors_and_admins_write_them() {
    let dir = TempDir::new("flows-roles");
    let s = Server::start(&dir.0);
    let agent = s.login("agent1", "agent").await;
    let admin = s.login("admin", "admin").await;
    let sup = s.login("supervisor", "supervisor").await;
    let list = agent.get("/api/v1/flows").await.expect(200);
    let id = list[0]["id"].as_str().expect("id").to_owned();
    agent.get(&format!("/api/v1/flows/{id}")).await.expect(200);
    agent
        .get(&format!("/api/v1/flows/{id}/versions/1"))
        .await
        .expect(200);
    agent.get("/api/v1/flow-settings").await.expect(200);
    let body = json!({"name": "mine", "definition": hello_flow("x")});
    agent
        .post("/api/v1/flows", body.clone())
        .await
        .expect_error(403, "forbidden");
    agent
        .put(
            &format!("/api/v1/flows/{id}"),
            json!({"definition": hello_flow("x")}),
        )
        .await
        .expect_error(403, "forbidden");
    agent
        .delete(&format!("/api/v1/flows/{id}"))
        .await
        .expect_error(403, "forbidden");
    agent
        .put("/api/v1/flow-settings", json!({"chat_flow": null}))
        .await
        .expect_error(403, "forbidden");
    admin.post("/api/v1/flows", body).await.expect(201);
    sup.put(
        &format!("/api/v1/flows/{id}"),
        json!({"definition": hello_flow("y")}),
    )
    .await
    .expect(200);
    // The OpenAPI document lists the routes.
    let doc = common::send(s.http.get(s.url("/openapi.json")))
        .await
        .expect(200);
    for p in [
        "/api/v1/flows",
        "/api/v1/flows/{id}",
        "/api/v1/flows/{id}/versions",
        "/api/v1/flows/{id}/versions/{version}",
        "/api/v1/flow-settings",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} in openapi.json");
    }
}
