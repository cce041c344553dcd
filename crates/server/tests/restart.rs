//! Durable before acknowledged: `kill -9` the real server at any moment, restart it on the same
//! data directory, and nothing acknowledged is lost, duplicated or reordered.

mod common;

use common::{Server, Session, TempDir, event_types};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn offered_to(s: &Session, agent: &str) -> Vec<String> {
    let list = s
        .get(&format!("/api/v1/interactions?state=offered&agent={agent}"))
        .await
        .expect(200);
    list.as_array()
        .expect("list")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn restart_requeues_in_the_same_order() {
    let dir = TempDir::new("restart-order");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let agent = s.login("agent1", "agent").await;
    let me = agent.agent_id();

    let mut ids = Vec::new();
    for i in 0..15 {
        ids.push(
            admin.task("support", &format!("task {i}")).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    // agent1 takes 5 tasks at once (default capacity): the first five, in order
    agent.set_state("available").await;
    let mut offered = offered_to(&admin, &me).await;
    offered.sort();
    assert_eq!(offered, ids[..5].to_vec());
    for id in &ids[..2] {
        agent
            .post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
            .await
            .expect(200);
    }

    s.kill9();
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let agent = s.login("agent1", "agent").await;

    // connected ones stay with their agent; offered ones went back and (the agent being still
    // available with 3 free slots) were offered again, in their original order
    for id in &ids[..2] {
        let v = admin
            .get(&format!("/api/v1/interactions/{id}"))
            .await
            .expect(200);
        assert_eq!(v["state"], "connected", "{id}");
        assert_eq!(v["agent_id"], me.as_str());
    }
    for id in &ids[2..5] {
        let v = admin.wait_for(id, |v| v["state"] == "offered").await;
        let types = event_types(&v);
        assert!(
            types.contains(&"interaction.requeued".to_owned()),
            "{types:?}"
        );
        assert_eq!(
            types.iter().filter(|t| *t == "interaction.created").count(),
            1
        );
    }
    for id in &ids[5..] {
        assert_eq!(
            admin
                .get(&format!("/api/v1/interactions/{id}"))
                .await
                .expect(200)["state"],
            "queued"
        );
    }

    // drain: each end frees one slot and the next task in creation order is offered
    for id in &ids[..2] {
        agent
            .post(
                &format!("/api/v1/interactions/{id}/end"),
                json!({"disposition": "resolved"}),
            )
            .await
            .expect(200);
    }
    let mut served: Vec<String> = ids[..2].to_vec();
    let mut seen: HashSet<String> = served.iter().cloned().collect();
    while served.len() < ids.len() {
        let mut now: Vec<String> = offered_to(&admin, &me).await;
        now.sort_by_key(|id| ids.iter().position(|x| x == id));
        let Some(id) = now.first().cloned() else {
            panic!("nothing offered; served {}", served.len())
        };
        agent
            .post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
            .await
            .expect(200);
        agent
            .post(
                &format!("/api/v1/interactions/{id}/end"),
                json!({"disposition": "resolved"}),
            )
            .await
            .expect(200);
        assert!(seen.insert(id.clone()), "{id} served twice");
        served.push(id);
    }
    assert_eq!(served, ids, "served in creation order across the restart");
}

#[tokio::test]
async fn kill_at_any_moment_loses_nothing_acknowledged() {
    let dir = TempDir::new("restart-kill");
    let mut acknowledged: Vec<String> = Vec::new();
    for (round, kill_after_ms) in [150u64, 600, 1100].into_iter().enumerate() {
        let s = Server::start(&dir.0);
        let admin = s.login("admin", "admin").await;
        let a1 = s.login("agent1", "agent").await;
        let a2 = s.login("agent2", "agent").await;
        a1.set_state("available").await;
        a2.set_state("available").await;

        // load: four creators and two agents accepting whatever is offered to them
        let acks = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut tasks = Vec::new();
        for w in 0..4 {
            let admin = admin.clone();
            let acks = acks.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let r = admin
                        .post("/api/v1/interactions", json!({"queue": if i % 2 == 0 { "sales" } else { "support" }, "subject": format!("r{round} w{w} #{i}")}))
                        .await;
                    if r.status != 201 {
                        break;
                    }
                    acks.lock().expect("lock").push(r.body["id"].as_str().expect("id").to_owned());
                }
            }));
        }
        for agent in [a1.clone(), a2.clone()] {
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                let me = agent.agent_id();
                loop {
                    let r = admin
                        .get(&format!("/api/v1/interactions?state=offered&agent={me}"))
                        .await;
                    if r.status != 200 {
                        break;
                    }
                    for it in r.body.as_array().expect("list") {
                        let id = it["id"].as_str().expect("id");
                        let _ = agent
                            .post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
                            .await;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        // On a loaded machine the first acknowledgement may come later: kill after it.
        for _ in 0..200 {
            if !acks.lock().expect("lock").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.kill9();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        let round_acks = acks.lock().expect("lock").clone();
        assert!(
            !round_acks.is_empty(),
            "round {round}: some tasks were acknowledged"
        );
        acknowledged.extend(round_acks);

        // restart: everything acknowledged (this round and earlier) is there, exactly once,
        // and still open; no interaction is offered to two agents; capacity holds
        let s = Server::start(&dir.0);
        let admin = s.login("admin", "admin").await;
        let all = admin
            .get("/api/v1/interactions?limit=1000")
            .await
            .expect(200);
        let all = all.as_array().expect("list");
        let by_id: HashMap<&str, &Value> = all
            .iter()
            .map(|v| (v["id"].as_str().expect("id"), v))
            .collect();
        assert_eq!(by_id.len(), all.len(), "no duplicate rows");
        // The list stops at 1,000 (newest first); older ones are read one by one.
        for id in &acknowledged {
            let one;
            let v = match by_id.get(id.as_str()) {
                Some(v) => *v,
                None => {
                    let r = admin.get(&format!("/api/v1/interactions/{id}")).await;
                    assert_eq!(r.status, 200, "round {round}: acknowledged {id} lost");
                    one = r.body;
                    &one
                }
            };
            assert!(
                matches!(
                    v["state"].as_str(),
                    Some("queued" | "offered" | "connected")
                ),
                "{id}: {}",
                v["state"]
            );
        }
        let mut held: HashMap<String, usize> = HashMap::new();
        let mut holding = Vec::new();
        for state in ["offered", "connected"] {
            let r = admin
                .get(&format!("/api/v1/interactions?state={state}&limit=1000"))
                .await
                .expect(200);
            holding.extend(r.as_array().expect("list").iter().cloned());
        }
        for v in &holding {
            *held
                .entry(v["agent_id"].as_str().expect("agent").to_owned())
                .or_default() += 1;
        }
        for (agent, n) in held {
            assert!(
                n <= 5,
                "agent {agent} holds {n} tasks, over its capacity of 5"
            );
        }
        for id in acknowledged.iter().take(5) {
            let v = admin
                .get(&format!("/api/v1/interactions/{id}"))
                .await
                .expect(200);
            assert_eq!(
                event_types(&v)
                    .iter()
                    .filter(|t| *t == "interaction.created")
                    .count(),
                1
            );
        }
        s.kill9();
    }
}
