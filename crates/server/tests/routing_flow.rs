//! Routing end to end, through the API only, as a CRM, an admin and agents use it: skills and
//! levels, priorities, capacity, offer timeouts, rejects, dispositions and wrap-up, overflow,
//! transfer, live configuration changes, customers and the real-time figures.

mod common;
mod helpers;

use common::{Server, TempDir, event_types};
use helpers::{agent_login, events_of, id_of, is};
use serde_json::{Value, json};
use std::time::Duration;

fn task_capacity(n: u16) -> Option<Value> {
    Some(json!({"per_channel": {"task": n}}))
}

async fn pause() {
    // distinct "available since" instants for the longest-idle rule
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn only_qualified_agents_get_offers_best_skill_then_longest_idle() {
    let dir = TempDir::new("skills");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let billing = admin.new_skill("billing").await;
    let q = id_of(
        &admin
            .new_queue(json!({
                "name": "billing",
                "required_skills": [{"skill": billing, "min_level": 3}],
            }))
            .await,
    );
    // every agent holds one task at a time
    let mut ids = std::collections::HashMap::new();
    for (name, level) in [
        ("novice", 2),
        ("mid-early", 5),
        ("expert", 8),
        ("mid-late", 5),
    ] {
        let a = admin
            .new_agent(name, &[(&billing, level)], task_capacity(1))
            .await;
        ids.insert(name, id_of(&a));
    }
    // they come in in this order: mid-early has been idle longest, expert shortest
    let mut sessions = std::collections::HashMap::new();
    for name in ["mid-early", "novice", "mid-late", "expert"] {
        let a = agent_login(&s, name).await;
        a.set_state("available").await;
        sessions.insert(name, a);
        pause().await;
    }

    // best skill match first, whatever the idle time
    let t1 = admin.task("billing", "t1").await;
    assert!(is(&t1, "offered", Some(&ids["expert"])), "{t1}");
    // equal levels: the longest idle of the two
    let t2 = admin.task(&q, "t2").await;
    assert!(is(&t2, "offered", Some(&ids["mid-early"])), "{t2}");
    let t3 = admin.task("billing", "t3").await;
    assert!(is(&t3, "offered", Some(&ids["mid-late"])), "{t3}");
    // the novice (level 2 < 3) is available and free, but never qualifies
    let t4 = admin.task("billing", "t4").await;
    assert!(is(&t4, "queued", None), "{t4}");
    assert!(t4["agent_id"].is_null());
    assert_eq!(
        sessions["novice"]
            .get("/api/v1/interactions")
            .await
            .expect(200),
        json!([])
    );
    let novice = admin.agent_state(&ids["novice"]).await;
    assert_eq!(novice["state"], "available");
    assert_eq!(novice["activity"], "idle");
    assert_eq!(novice["load"], json!({}));

    // the real-time view agrees: three qualified agents busy, one waiting task
    let qs = admin.queue_stats(&q).await;
    assert_eq!(qs["waiting"], 1);
    assert_eq!(qs["offered"], 3);
    assert_eq!(qs["agents"], json!({"busy": 3}));

    // the expert finishes: the waiting task goes to the expert again, never to the novice
    let expert = &sessions["expert"];
    let t1id = id_of(&t1);
    expert.accept(&t1id).await.expect(200);
    expert.end(&t1id, "done").await.expect(200);
    let t4 = admin.interaction(&id_of(&t4)).await;
    assert!(is(&t4, "offered", Some(&ids["expert"])), "{t4}");
}

#[tokio::test]
async fn a_task_needing_its_own_skills_goes_only_to_agents_who_have_them_even_after_a_restart() {
    let dir = TempDir::new("own-skills");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let general = admin.new_skill("general").await;
    let arabic = admin.new_skill("arabic").await;
    let q = id_of(
        &admin
            .new_queue(json!({"name": "help", "required_skills": [{"skill": general}]}))
            .await,
    );
    let plain = id_of(
        &admin
            .new_agent("plain", &[(&general, 9)], task_capacity(5))
            .await,
    );
    let speaker = id_of(
        &admin
            .new_agent("speaker", &[(&general, 1), (&arabic, 4)], task_capacity(5))
            .await,
    );
    let p = agent_login(&s, "plain").await;
    p.set_state("available").await;

    // an unknown skill, a bad level and a forged routing attribute are refused or dropped
    admin
        .post(
            "/api/v1/interactions",
            json!({"queue": "help", "subject": "x", "skills": [{"skill": "klingon"}]}),
        )
        .await
        .expect_error(422, "unknown_skill");
    admin
        .post(
            "/api/v1/interactions",
            json!({"queue": "help", "subject": "x", "skills": [{"skill": "arabic", "min_level": 11}]}),
        )
        .await
        .expect_error(422, "invalid_value");
    let forged = admin
        .post(
            "/api/v1/interactions",
            json!({"queue": "help", "subject": "forged",
                   "attributes": {"routing_skills": [{"skill_id": arabic, "min_level": 10}]}}),
        )
        .await
        .expect(201);
    assert!(
        forged["attributes"].get("routing_skills").is_none(),
        "{forged}"
    );
    assert!(is(&forged, "offered", Some(&plain)), "{forged}");

    // needs Arabic at level 3: the better general agent is free but does not qualify
    let t = admin
        .post(
            "/api/v1/interactions",
            json!({"queue": q, "subject": "in Arabic", "skills": [{"skill": "arabic", "min_level": 3}]}),
        )
        .await
        .expect(201);
    assert!(is(&t, "queued", None), "{t}");
    // still so after a restart: the skills are kept with the interaction
    drop(s);
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let p = agent_login(&s, "plain").await;
    p.set_state("available").await;
    let t = admin.interaction(&id_of(&t)).await;
    assert!(is(&t, "queued", None), "{t}");
    let sp = agent_login(&s, "speaker").await;
    sp.set_state("available").await;
    let t = admin
        .wait_for(&id_of(&t), |v| v["state"] == "offered")
        .await;
    assert!(is(&t, "offered", Some(&speaker)), "{t}");
}

#[tokio::test]
async fn higher_priority_is_offered_first_across_queues() {
    let dir = TempDir::new("priority");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin.new_skill("prio").await;
    let req = json!([{"skill": skill, "min_level": 1}]);
    admin
        .new_queue(json!({"name": "low", "priority": 0, "required_skills": req}))
        .await;
    admin
        .new_queue(json!({"name": "high", "priority": 10, "required_skills": req}))
        .await;
    admin
        .new_agent("solo", &[(&skill, 1)], task_capacity(1))
        .await;
    let solo = agent_login(&s, "solo").await;

    // all wait while the agent is away, oldest first
    let old = admin.task("low", "old, default priority").await;
    let bumped = admin
        .task_with(json!({"queue": "low", "subject": "bumped", "priority": 5}))
        .await;
    let urgent = admin.task("high", "urgent queue").await;
    let last = admin.task("low", "newest, default priority").await;
    assert_eq!(old["priority"], 0);
    assert_eq!(bumped["priority"], 5);
    assert_eq!(urgent["priority"], 10, "a task takes its queue's priority");
    for t in [&old, &bumped, &urgent, &last] {
        assert!(is(t, "queued", None), "{t}");
    }

    solo.set_state("available").await;
    let mut order = Vec::new();
    for _ in 0..4 {
        let offered = solo
            .get("/api/v1/interactions?state=offered")
            .await
            .expect(200);
        let offered = offered.as_array().expect("list");
        assert_eq!(offered.len(), 1, "capacity 1: one offer at a time");
        let id = id_of(&offered[0]);
        solo.accept(&id).await.expect(200);
        solo.end(&id, "done").await.expect(200);
        order.push(id);
    }
    assert_eq!(
        order,
        vec![id_of(&urgent), id_of(&bumped), id_of(&old), id_of(&last)]
    );
}

#[tokio::test]
async fn capacity_per_channel_is_never_exceeded() {
    let dir = TempDir::new("capacity");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin.new_skill("cap").await;
    admin
        .new_queue(json!({"name": "cap", "required_skills": [{"skill": skill}]}))
        .await;
    let duo_id = id_of(
        &admin
            .new_agent("duo", &[(&skill, 1)], task_capacity(2))
            .await,
    );
    let duo = agent_login(&s, "duo").await;
    duo.set_state("available").await;

    let t: Vec<String> = [
        admin.task("cap", "1").await,
        admin.task("cap", "2").await,
        admin.task("cap", "3").await,
    ]
    .iter()
    .map(id_of)
    .collect();
    let held = |v: &Value| v.as_array().map(Vec::len);
    let offered = duo
        .get("/api/v1/interactions?state=offered")
        .await
        .expect(200);
    assert_eq!(held(&offered), Some(2));
    assert!(is(
        &admin.interaction(&t[0]).await,
        "offered",
        Some(&duo_id)
    ));
    assert!(is(
        &admin.interaction(&t[1]).await,
        "offered",
        Some(&duo_id)
    ));
    assert!(is(&admin.interaction(&t[2]).await, "queued", None));
    let st = duo.agent_state(&duo_id).await;
    assert_eq!(st["load"], json!({"task": 2}));
    assert_eq!(st["activity"], "busy");

    // accepting changes nothing: two held, the third still waits
    duo.accept(&t[0]).await.expect(200);
    duo.accept(&t[1]).await.expect(200);
    assert!(is(&admin.interaction(&t[2]).await, "queued", None));
    assert_eq!(duo.agent_state(&duo_id).await["load"], json!({"task": 2}));
    let connected = duo
        .get("/api/v1/interactions?state=connected")
        .await
        .expect(200);
    assert_eq!(held(&connected), Some(2));

    // one ends: the third comes, and the load stays at 2
    duo.end(&t[0], "done").await.expect(200);
    assert!(is(
        &admin.interaction(&t[2]).await,
        "offered",
        Some(&duo_id)
    ));
    assert_eq!(duo.agent_state(&duo_id).await["load"], json!({"task": 2}));
}

#[tokio::test]
async fn ignored_offer_expires_agent_goes_on_break_and_task_returns_to_the_head() {
    let dir = TempDir::new("expiry");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin.new_skill("fast").await;
    admin
        .new_queue(json!({
            "name": "fast",
            "offer_timeout_s": 1,
            "required_skills": [{"skill": skill}],
        }))
        .await;
    let sleepy = id_of(
        &admin
            .new_agent("sleepy", &[(&skill, 1)], task_capacity(1))
            .await,
    );
    let second = id_of(
        &admin
            .new_agent("second", &[(&skill, 1)], task_capacity(1))
            .await,
    );
    agent_login(&s, "sleepy").await.set_state("available").await;

    let t1 = admin.task("fast", "first").await;
    let t1id = id_of(&t1);
    assert!(is(&t1, "offered", Some(&sleepy)), "{t1}");
    let expires = t1["offered_at"].as_str().expect("offered_at").to_owned();
    let t2 = id_of(&admin.task("fast", "second").await);

    // nobody answers: back to the queue within ~3 s
    let started = tokio::time::Instant::now();
    let v = admin
        .poll(
            &format!("/api/v1/interactions/{t1id}"),
            Duration::from_secs(3),
            |v| v["state"] == "queued",
        )
        .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "expired after {took:?}, offer made at {expires}"
    );
    assert!(v["agent_id"].is_null());
    let expired = events_of(&v, "interaction.offer_expired");
    assert_eq!(expired.len(), 1, "{}", v["events"]);
    assert_eq!(expired[0]["data"]["agent_id"], sleepy);
    let st = admin.agent_state(&sleepy).await;
    assert_eq!(st["state"], "break");
    assert_eq!(st["reason"], "missed_offer");
    assert_eq!(st["load"], json!({}));
    // the later task was not offered to the agent on break either
    assert!(is(&admin.interaction(&t2).await, "queued", None));

    // the next agent to come gets the returned task first
    let b = agent_login(&s, "second").await;
    b.set_state("available").await;
    assert!(is(
        &admin.interaction(&t1id).await,
        "offered",
        Some(&second)
    ));
    assert!(is(&admin.interaction(&t2).await, "queued", None));
    b.accept(&t1id).await.expect(200);
    let types = event_types(&admin.interaction(&t1id).await);
    assert_eq!(
        types,
        [
            "interaction.created",
            "interaction.queued",
            "interaction.offered",
            "interaction.offer_expired",
            "interaction.offered",
            "interaction.accepted",
        ]
    );
}

#[tokio::test]
async fn a_rejected_task_goes_to_another_agent_and_not_back_at_once() {
    let dir = TempDir::new("reject");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin.new_skill("rej").await;
    admin
        .new_queue(json!({"name": "rej", "required_skills": [{"skill": skill}]}))
        .await;
    let mut ids = Vec::new();
    for name in ["first", "other", "late"] {
        ids.push(id_of(
            &admin
                .new_agent(name, &[(&skill, 1)], task_capacity(1))
                .await,
        ));
    }
    let first = agent_login(&s, "first").await;
    let other = agent_login(&s, "other").await;
    first.set_state("available").await;
    pause().await;
    other.set_state("available").await;

    let t = id_of(&admin.task("rej", "hot potato").await);
    assert!(is(&admin.interaction(&t).await, "offered", Some(&ids[0])));
    // the other agent cannot take or refuse what is not offered to it
    other
        .accept(&t)
        .await
        .expect_error(409, "not_offered_to_you");
    other
        .reject(&t)
        .await
        .expect_error(409, "not_offered_to_you");

    // first refuses: it goes to the other available agent at once
    let v = first.reject(&t).await.expect(200);
    assert!(is(&v, "offered", Some(&ids[1])), "{v}");
    // the other refuses too: the first, though available and free, is not offered it again
    let v = other.reject(&t).await.expect(200);
    assert!(is(&v, "queued", None), "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = admin.interaction(&t).await;
    assert!(is(&v, "queued", None), "{v}");
    assert_eq!(events_of(&v, "interaction.offer_rejected").len(), 2);
    assert_eq!(admin.agent_state(&ids[0]).await["state"], "available");
    first.accept(&t).await.expect_error(409, "wrong_state");

    // a third agent gets it
    agent_login(&s, "late").await.set_state("available").await;
    assert!(is(&admin.interaction(&t).await, "offered", Some(&ids[2])));
}

#[tokio::test]
async fn end_with_disposition_wrap_up_then_ended_with_ordered_events() {
    let dir = TempDir::new("disposition");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin.new_skill("disp").await;
    let q = id_of(
        &admin
            .new_queue(json!({
                "name": "disp",
                "required_skills": [{"skill": skill}],
                "dispositions": ["resolved", "escalated"],
                "wrap_up_s": 1,
            }))
            .await,
    );
    let me = id_of(
        &admin
            .new_agent("closer", &[(&skill, 1)], task_capacity(1))
            .await,
    );
    admin.new_agent("bystander", &[(&skill, 1)], None).await;
    let agent = agent_login(&s, "closer").await;
    let bystander = agent_login(&s, "bystander").await;
    agent.set_state("available").await;

    let t = id_of(&admin.task("disp", "close me").await);
    let v = agent.accept(&t).await.expect(200);
    assert!(is(&v, "connected", Some(&me)), "{v}");
    assert!(v["answered_at"].is_string());

    // only the queue's codes
    agent
        .end(&t, "bogus")
        .await
        .expect_error(422, "unknown_disposition");
    // only its agent (or a supervisor) ends it
    bystander
        .end(&t, "resolved")
        .await
        .expect_error(403, "forbidden");
    assert!(is(&admin.interaction(&t).await, "connected", Some(&me)));

    let v = agent
        .post(
            &format!("/api/v1/interactions/{t}/end"),
            json!({"disposition": "resolved", "notes": "refund sent"}),
        )
        .await
        .expect(200);
    let ended_at = tokio::time::Instant::now();
    assert_eq!(v["state"], "wrap_up", "{v}");
    assert_eq!(v["disposition"], "resolved");
    assert_eq!(v["notes"], "refund sent");
    assert!(v["ended_at"].is_string());
    let st = agent.agent_state(&me).await;
    assert_eq!(st["activity"], "wrap_up");
    // the agent keeps its capacity during wrap-up: a new task waits
    let next = id_of(&admin.task("disp", "next").await);
    assert!(is(&admin.interaction(&next).await, "queued", None));
    agent
        .end(&t, "resolved")
        .await
        .expect_error(409, "wrong_state");

    let v = admin
        .poll(
            &format!("/api/v1/interactions/{t}"),
            Duration::from_secs(4),
            |v| v["state"] == "ended",
        )
        .await;
    assert!(
        ended_at.elapsed() >= Duration::from_millis(800),
        "wrap-up lasted {:?}",
        ended_at.elapsed()
    );
    assert_eq!(v["disposition"], "resolved");
    assert_eq!(
        event_types(&v),
        [
            "interaction.created",
            "interaction.queued",
            "interaction.offered",
            "interaction.accepted",
            "interaction.completed",
            "interaction.ended",
        ]
    );
    let events = v["events"].as_array().expect("events");
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases: {seqs:?}"
    );
    let ats: Vec<jiff::Timestamp> = events
        .iter()
        .map(|e| e["at"].as_str().expect("at").parse().expect("RFC 3339"))
        .collect();
    assert!(
        ats.windows(2).all(|w| w[0] <= w[1]),
        "times in order: {ats:?}"
    );
    let completed = &events[4]["data"];
    assert_eq!(completed["disposition"], "resolved");
    assert_eq!(completed["notes"], "refund sent");
    assert_eq!(completed["agent_id"], me);
    assert_eq!(completed["wrap_up_s"], 1);
    assert_eq!(events[2]["data"]["queue_id"], q);
    assert_eq!(events[5]["data"]["disposition"], "resolved");

    // wrap-up over: the agent is free and gets the waiting task
    assert!(is(&admin.interaction(&next).await, "offered", Some(&me)));
    assert_eq!(agent.agent_state(&me).await["activity"], "busy");
}

#[tokio::test]
async fn overflow_moves_a_task_to_another_queue_after_its_delay() {
    let dir = TempDir::new("overflow");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let rare = admin.new_skill("rare").await;
    let common = admin.new_skill("common").await;
    let b = id_of(
        &admin
            .new_queue(json!({"name": "generalists", "required_skills": [{"skill": common}]}))
            .await,
    );
    let a = id_of(
        &admin
            .new_queue(json!({
                "name": "specialists",
                "required_skills": [{"skill": rare, "min_level": 1}],
                "overflow": [{"after_s": 1, "queue": b}],
            }))
            .await,
    );
    // the target of an overflow cannot be deleted under it
    admin
        .delete(&format!("/api/v1/queues/{b}"))
        .await
        .expect_error(409, "in_use");
    let gen_id = id_of(&admin.new_agent("generalist", &[(&common, 5)], None).await);
    agent_login(&s, "generalist")
        .await
        .set_state("available")
        .await;

    let t = admin.task("specialists", "needs a specialist").await;
    let started = tokio::time::Instant::now();
    assert!(is(&t, "queued", None), "{t}");
    assert_eq!(t["queue_id"], a);
    let t = id_of(&t);
    let v = admin
        .poll(
            &format!("/api/v1/interactions/{t}"),
            Duration::from_secs(4),
            |v| v["state"] == "offered",
        )
        .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "overflowed after {took:?}"
    );
    assert_eq!(v["agent_id"], gen_id);
    assert_eq!(v["queue_id"], b);
    let over = events_of(&v, "interaction.overflowed");
    assert_eq!(over.len(), 1, "{}", v["events"]);
    assert_eq!(over[0]["data"]["from_queue_id"], a);
    assert_eq!(over[0]["data"]["to_queue_id"], b);
    let types = event_types(&v);
    let pos = |k: &str| types.iter().position(|t| t == k).expect(k);
    assert!(pos("interaction.overflowed") < pos("interaction.offered"));
}

#[tokio::test]
async fn the_handling_agent_transfers_to_another_queue() {
    let dir = TempDir::new("transfer");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let s1 = admin.new_skill("first-line").await;
    let s2 = admin.new_skill("second-line").await;
    let q1 = id_of(
        &admin
            .new_queue(json!({"name": "first-line", "required_skills": [{"skill": s1}]}))
            .await,
    );
    let q2 = id_of(
        &admin
            .new_queue(json!({"name": "second-line", "required_skills": [{"skill": s2}]}))
            .await,
    );
    let one = id_of(&admin.new_agent("one", &[(&s1, 5)], None).await);
    let two = id_of(&admin.new_agent("two", &[(&s2, 5)], None).await);
    let a1 = agent_login(&s, "one").await;
    let a2 = agent_login(&s, "two").await;
    a1.set_state("available").await;
    a2.set_state("available").await;

    let t = id_of(&admin.task("first-line", "escalate me").await);
    // not connected yet: nothing to transfer
    a1.post(
        &format!("/api/v1/interactions/{t}/transfer"),
        json!({"queue": "second-line"}),
    )
    .await
    .expect_error(409, "wrong_state");
    a1.accept(&t).await.expect(200);
    assert_eq!(a1.agent_state(&one).await["load"], json!({"task": 1}));
    // another agent cannot move it
    a2.post(
        &format!("/api/v1/interactions/{t}/transfer"),
        json!({"queue": "second-line"}),
    )
    .await
    .expect_error(403, "forbidden");
    a1.post(
        &format!("/api/v1/interactions/{t}/transfer"),
        json!({"queue": "no-such-queue"}),
    )
    .await
    .expect_error(422, "unknown_queue");

    let v = a1
        .post(
            &format!("/api/v1/interactions/{t}/transfer"),
            json!({"queue": "second-line"}),
        )
        .await
        .expect(200);
    assert_eq!(v["queue_id"], q2);
    assert!(is(&v, "offered", Some(&two)), "{v}");
    assert_eq!(a1.agent_state(&one).await["load"], json!({}));
    // it is no longer among the first agent's interactions (which may still read it, as
    // every contact of the tenant's history); the second takes it
    let mine = a1.get("/api/v1/interactions").await.expect(200);
    assert!(
        mine.as_array()
            .expect("list")
            .iter()
            .all(|i| i["id"] != t.as_str()),
        "{mine}"
    );
    assert_eq!(
        a1.get(&format!("/api/v1/interactions/{t}"))
            .await
            .expect(200)["agent_id"],
        two.as_str()
    );
    a2.accept(&t).await.expect(200);
    let v = admin.interaction(&t).await;
    assert!(is(&v, "connected", Some(&two)));
    let tr = events_of(&v, "interaction.transferred");
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0]["data"]["from_agent_id"], one);
    assert_eq!(tr[0]["data"]["from_queue_id"], q1);
    assert_eq!(tr[0]["data"]["to_queue_id"], q2);
    let types = event_types(&v);
    assert_eq!(
        &types[types.len() - 5..],
        [
            "interaction.accepted",
            "interaction.transferred",
            "interaction.queued",
            "interaction.offered",
            "interaction.accepted",
        ]
    );
}

#[tokio::test]
async fn queue_changes_apply_live_to_waiting_tasks() {
    let dir = TempDir::new("live-config");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let lang = admin.new_skill("arabic").await;
    let q = admin
        .new_queue(json!({"name": "arabic", "required_skills": [{"skill": lang, "min_level": 7}]}))
        .await;
    assert_eq!(q["version"], 1);
    let q = id_of(&q);
    let learner = id_of(&admin.new_agent("learner", &[(&lang, 4)], None).await);
    agent_login(&s, "learner")
        .await
        .set_state("available")
        .await;
    let t1 = id_of(&admin.task("arabic", "one").await);
    let t2 = id_of(&admin.task("arabic", "two").await);
    assert!(is(&admin.interaction(&t1).await, "queued", None));
    assert_eq!(admin.queue_stats(&q).await["waiting"], 2);

    // lower the bar while they wait: the learner now qualifies, at once
    let v = admin
        .patch(
            &format!("/api/v1/queues/{q}"),
            json!({"required_skills": [{"skill": lang, "min_level": 4}]}),
        )
        .await
        .expect(200);
    assert_eq!(v["version"], 2);
    assert_eq!(v["required_skills"][0]["min_level"], 4);
    assert_eq!(v["name"], "arabic", "a patch keeps what it does not name");
    for t in [&t1, &t2] {
        admin
            .poll(
                &format!("/api/v1/interactions/{t}"),
                Duration::from_secs(3),
                |v| is(v, "offered", Some(&learner)),
            )
            .await;
    }
    assert_eq!(
        admin.get(&format!("/api/v1/queues/{q}")).await.expect(200)["version"],
        2
    );
}

#[tokio::test]
async fn work_rotates_to_the_agent_idle_longest_since_its_last_task() {
    let dir = TempDir::new("rotation");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin.new_skill("rr").await;
    admin
        .new_queue(json!({"name": "rr", "required_skills": [{"skill": skill}]}))
        .await;
    let a = id_of(
        &admin
            .new_agent("rr-a", &[(&skill, 1)], task_capacity(1))
            .await,
    );
    let b = id_of(
        &admin
            .new_agent("rr-b", &[(&skill, 1)], task_capacity(1))
            .await,
    );
    let sa = agent_login(&s, "rr-a").await;
    let sb = agent_login(&s, "rr-b").await;
    sa.set_state("available").await;
    pause().await;
    sb.set_state("available").await;
    // a first (idle longest); once a is done, b has been idle longer than a
    let mut got = Vec::new();
    for (who, sess) in [(&a, &sa), (&b, &sb), (&a, &sa), (&b, &sb)] {
        let t = admin.task("rr", "next").await;
        got.push(t["agent_id"].as_str().expect("offered").to_owned());
        assert_eq!(&got[got.len() - 1], who, "{t}");
        let id = id_of(&t);
        sess.accept(&id).await.expect(200);
        sess.end(&id, "done").await.expect(200);
        pause().await;
    }
}

#[tokio::test]
async fn supervisors_cancel_waiting_tasks_and_deleting_a_queue_withdraws_them() {
    let dir = TempDir::new("cancel");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let sup = s.login("supervisor", "supervisor").await;
    let skill = admin.new_skill("nobody").await;
    let q = id_of(
        &admin
            .new_queue(json!({"name": "unstaffed", "required_skills": [{"skill": skill}], "dispositions": ["spam"]}))
            .await,
    );
    let agent = s.login("agent1", "agent").await;
    let t = id_of(&admin.task("unstaffed", "junk").await);
    // an agent cannot cancel what is not its own; a code outside the queue's list is refused
    agent.end(&t, "spam").await.expect_error(403, "forbidden");
    sup.end(&t, "resolved")
        .await
        .expect_error(422, "unknown_disposition");
    let v = sup.end(&t, "spam").await.expect(200);
    assert_eq!(v["state"], "ended");
    assert_eq!(v["disposition"], "spam");
    let v = admin.interaction(&t).await;
    assert_eq!(
        event_types(&v),
        [
            "interaction.created",
            "interaction.queued",
            "interaction.estimated_wait",
            "interaction.cancelled",
        ]
    );
    assert_eq!(admin.queue_stats(&q).await["waiting"], 0);

    let t2 = id_of(&admin.task("unstaffed", "left waiting").await);
    admin
        .delete(&format!("/api/v1/queues/{q}"))
        .await
        .expect(204);
    let v = admin
        .poll(
            &format!("/api/v1/interactions/{t2}"),
            Duration::from_secs(3),
            |v| v["state"] == "ended",
        )
        .await;
    assert_eq!(v["disposition"], "withdrawn");
    assert_eq!(events_of(&v, "interaction.withdrawn").len(), 1);
    admin
        .post(
            "/api/v1/interactions",
            json!({"queue": "unstaffed", "subject": "too late"}),
        )
        .await
        .expect_error(422, "unknown_queue");
    admin
        .get(&format!("/api/v1/queues/{q}"))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn customers_contact_points_lookup_and_history() {
    let dir = TempDir::new("customers");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let sup = s.login("supervisor", "supervisor").await;

    let c = sup
        .post(
            "/api/v1/customers",
            json!({"name": "Ana Lima", "contact_points": [
                {"kind": "phone", "value": "+1 (555) 123-4567"},
                {"kind": "email", "value": " Ana@Example.COM "},
                {"kind": "whatsapp", "value": "+15551234567"},
            ]}),
        )
        .await
        .expect(201);
    let cid = id_of(&c);
    let mut points: Vec<(String, String)> = c["contact_points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().expect("kind").to_owned(),
                p["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    points.sort();
    assert_eq!(
        points,
        [
            ("email".to_owned(), "ana@example.com".to_owned()),
            ("phone".to_owned(), "+15551234567".to_owned()),
            ("whatsapp".to_owned(), "+15551234567".to_owned()),
        ]
    );
    // not E.164, not an email, taken by someone else
    sup.post(
        "/api/v1/customers",
        json!({"name": "X", "contact_points": [{"kind": "phone", "value": "555-1234"}]}),
    )
    .await
    .expect_error(422, "invalid_value");
    sup.post(
        "/api/v1/customers",
        json!({"name": "X", "contact_points": [{"kind": "email", "value": "nobody"}]}),
    )
    .await
    .expect_error(422, "invalid_value");
    sup.post(
        "/api/v1/customers",
        json!({"name": "Impostor", "contact_points": [{"kind": "phone", "value": "+15551234567"}]}),
    )
    .await
    .expect_error(409, "already_exists");
    let other = id_of(
        &sup.post(
            "/api/v1/customers",
            json!({"name": "Bo", "contact_points": [{"kind": "phone", "value": "+442079460958"}]}),
        )
        .await
        .expect(201),
    );

    // found by any of its contact points
    for q in ["%2B15551234567", "ana%40example.com", "ANA%40Example.com"] {
        let found = sup
            .get(&format!("/api/v1/customers?contact={q}"))
            .await
            .expect(200);
        let found = found.as_array().expect("list");
        assert_eq!(found.len(), 1, "lookup {q}: {found:?}");
        assert_eq!(found[0]["id"], cid.as_str());
        assert_eq!(found[0]["name"], "Ana Lima");
    }
    assert_eq!(
        sup.get("/api/v1/customers?contact=%2B19999999999")
            .await
            .expect(200),
        json!([])
    );
    let all = sup.get("/api/v1/customers").await.expect(200);
    assert_eq!(all.as_array().expect("list").len(), 2);

    // a CRM task for the customer shows in its history
    sup.post(
        "/api/v1/interactions",
        json!({"queue": "sales", "subject": "x", "customer": "01a2134f-e4a8-73c3-aec0-51d3da99653c"}),
    )
    .await
    .expect_error(422, "unknown_customer");
    let t = sup
        .task_with(json!({"queue": "sales", "subject": "call back about the refund", "customer": cid, "attributes": {"crm_case": "C-77"}}))
        .await;
    assert_eq!(t["customer_id"], cid.as_str());
    let t2 = sup
        .task_with(json!({"queue": "support", "subject": "second", "customer": cid}))
        .await;
    sup.task_with(json!({"queue": "support", "subject": "someone else", "customer": other}))
        .await;
    let v = admin
        .get(&format!("/api/v1/customers/{cid}"))
        .await
        .expect(200);
    let history = v["history"].as_array().expect("history");
    let hist_ids: Vec<&str> = history
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    assert_eq!(hist_ids, [id_of(&t2), id_of(&t)], "newest first");
    assert_eq!(history[1]["channel"], "task");
    assert_eq!(history[1]["subject"], "call back about the refund");
    assert_eq!(history[1]["attributes"]["crm_case"], "C-77");
    assert_eq!(v["contact_points"].as_array().expect("points").len(), 3);
    let listed = sup
        .get(&format!("/api/v1/interactions?customer={cid}"))
        .await
        .expect(200);
    assert_eq!(listed.as_array().expect("list").len(), 2);
    admin
        .get("/api/v1/customers/01a2134f-e4a8-73c3-aec0-51d3da99653c")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn customer_lookup_normalizes_phone_numbers() {
    let dir = TempDir::new("lookup-phone");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let cid = id_of(
        &sup.post(
            "/api/v1/customers",
            json!({"name": "Ana", "contact_points": [{"kind": "phone", "value": "+1 (555) 123-4567"}]}),
        )
        .await
        .expect(201),
    );
    // the very string the customer was created with
    let found = sup
        .get("/api/v1/customers?contact=%2B1%20(555)%20123-4567")
        .await
        .expect(200);
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found[0]["id"], cid.as_str());
}

#[tokio::test]
async fn realtime_stats_show_waiting_and_agents_by_state() {
    let dir = TempDir::new("realtime");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let sup = s.login("supervisor", "supervisor").await;
    let skill = admin.new_skill("rt").await;
    let q = id_of(
        &admin
            .new_queue(json!({
                "name": "rt",
                "required_skills": [{"skill": skill}],
                "service_level": {"percent": 90, "threshold_s": 15},
            }))
            .await,
    );
    // a present agent who takes no tasks, one on break, one offline
    let voice_only = id_of(
        &admin
            .new_agent(
                "voice-only",
                &[(&skill, 3)],
                Some(json!({"per_channel": {"voice": 1}})),
            )
            .await,
    );
    let luncher = id_of(&admin.new_agent("luncher", &[(&skill, 3)], None).await);
    admin.new_agent("away", &[(&skill, 3)], None).await;
    agent_login(&s, "voice-only")
        .await
        .set_state("available")
        .await;
    let st = sup
        .put_state(&luncher, json!({"state": "break", "reason": "lunch"}))
        .await;
    assert_eq!(st["reason"], "lunch");

    let empty = sup.queue_stats(&q).await;
    assert_eq!(empty["waiting"], 0);
    assert_eq!(empty["longest_wait_s"], 0.0);

    let t1 = id_of(&admin.task("rt", "waits").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.task("rt", "waits too").await;
    let qs = sup.queue_stats(&q).await;
    assert_eq!(qs["name"], "rt");
    assert_eq!(qs["waiting"], 2);
    assert_eq!(qs["offered"], 0);
    let longest = qs["longest_wait_s"].as_f64().expect("longest_wait_s");
    assert!((0.25..10.0).contains(&longest), "longest wait {longest}");
    assert_eq!(
        qs["agents"],
        json!({"available": 1, "break": 1, "offline": 1})
    );
    assert_eq!(qs["service_level"]["target_percent"], 90.0);
    assert_eq!(qs["service_level"]["threshold_s"], 15);
    assert!(
        qs["service_level"]["value"].is_null(),
        "nothing answered yet"
    );
    let rt = sup.get("/api/v1/stats/realtime").await.expect(200);
    // the tenant: the three demo agents offline too
    assert_eq!(
        rt["agents"],
        json!({"available": 1, "break": 1, "offline": 4})
    );
    let names: Vec<&str> = rt["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["rt", "sales", "support"]);

    // give the present agent task capacity: it takes the oldest at once, and the figures follow
    admin
        .patch(
            &format!("/api/v1/agents/{voice_only}"),
            json!({"capacity": {"per_channel": {"voice": 1, "task": 1}}}),
        )
        .await
        .expect(200);
    assert!(is(
        &admin.interaction(&t1).await,
        "offered",
        Some(&voice_only)
    ));
    let qs = sup.queue_stats(&q).await;
    assert_eq!(qs["waiting"], 1);
    assert_eq!(qs["offered"], 1);
    assert_eq!(qs["agents"], json!({"busy": 1, "break": 1, "offline": 1}));
}

#[tokio::test]
async fn an_agent_who_logs_off_with_an_offer_pending_stays_offline() {
    let dir = TempDir::new("offline-offer");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin.new_skill("gone").await;
    admin
        .new_queue(
            json!({"name": "gone", "offer_timeout_s": 1, "required_skills": [{"skill": skill}]}),
        )
        .await;
    let me = id_of(&admin.new_agent("leaver", &[(&skill, 1)], None).await);
    let agent = agent_login(&s, "leaver").await;
    agent.set_state("available").await;
    let t = id_of(&admin.task("gone", "left behind").await);
    assert!(is(&admin.interaction(&t).await, "offered", Some(&me)));
    agent.set_state("offline").await;
    // the offer runs out; the task goes back to the queue
    admin
        .poll(
            &format!("/api/v1/interactions/{t}"),
            Duration::from_secs(3),
            |v| is(v, "queued", None),
        )
        .await;
    // ... at once, revoked rather than left to expire
    let v = admin.interaction(&t).await;
    let types: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert!(types.contains(&"interaction.offer_revoked"), "{types:?}");
    assert!(!types.contains(&"interaction.offer_expired"), "{types:?}");
    // ... and the agent, who logged off, is still offline (not "present, on break")
    let st = admin.agent_state(&me).await;
    assert_eq!(st["state"], "offline", "{st}");
    assert!(st["activity"].is_null(), "{st}");
}

#[tokio::test]
async fn an_ignored_transfer_to_an_agent_lapses_back_to_the_queue() {
    let dir = TempDir::new("transfer-lapse");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin.new_skill("desk").await;
    let q = id_of(
        &admin
            .new_queue(json!({
                "name": "desk",
                "offer_timeout_s": 1,
                "required_skills": [{"skill": skill}],
            }))
            .await,
    );
    admin
        .new_agent("one", &[(&skill, 5)], task_capacity(1))
        .await;
    let two = id_of(
        &admin
            .new_agent("two", &[(&skill, 5)], task_capacity(1))
            .await,
    );
    let a1 = agent_login(&s, "one").await;
    a1.set_state("available").await;
    let t = id_of(&admin.task("desk", "hand me over").await);
    a1.accept(&t).await.expect(200);
    let a2 = agent_login(&s, "two").await;
    a2.set_state("available").await;

    let v = a1
        .post(
            &format!("/api/v1/interactions/{t}/transfer"),
            json!({"agent": "two"}),
        )
        .await
        .expect(200);
    assert!(is(&v, "offered", Some(&two)), "{v}");
    let v = admin.interaction(&t).await;
    let offered = events_of(&v, "interaction.offered");
    let direct = offered.last().expect("the transfer's offer");
    assert_eq!(direct["data"]["transfer"], true);
    assert!(
        direct["data"]["expires_at"].is_string(),
        "a transfer's offer says when it lapses: {direct}"
    );
    // The first agent leaves; the second lets the transfer ring out.
    a1.set_state("offline").await;
    let v = admin
        .poll(
            &format!("/api/v1/interactions/{t}"),
            Duration::from_secs(4),
            |v| !events_of(v, "interaction.offer_expired").is_empty(),
        )
        .await;
    let expired = events_of(&v, "interaction.offer_expired");
    assert_eq!(expired.len(), 1, "{}", v["events"]);
    assert_eq!(expired[0]["data"]["agent_id"], two);
    assert_eq!(expired[0]["data"]["transfer"], true);
    assert_eq!(v["queue_id"], q);
    // The agent the router did not choose is not sent on break; the queue's next offer (a
    // routed one, which expires as usual) may go to it.
    let st = admin.agent_state(&two).await;
    assert_eq!(st["state"], "available", "{st}");
    let types = event_types(&v);
    let lapsed = types
        .iter()
        .position(|k| k == "interaction.offer_expired")
        .expect("lapsed");
    assert_eq!(
        types.get(lapsed + 1).map(String::as_str),
        Some("interaction.queued"),
        "{types:?}"
    );
}
