//! DESIGN: "every query is scoped by [the tenant], and a test sweeps the API as two tenants to
//! prove that nothing crosses". Two tenants on one server build the same contact center (same
//! names, same customer phone number); then each sweeps every route with the other's ids.

mod common;
mod helpers;

use common::{Server, Session, TempDir};
use helpers::{Events, admin_create, agent_login, id_of, is};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const NIL: &str = "01a2134f-e4a8-73c3-aec0-51d3da99653c";
const PHONE: &str = "+15550001111";

/// One tenant's contact center.
struct World {
    tenant: String,
    admin: Session,
    agent_session: Session,
    skill: String,
    queue: String,
    queue2: String,
    agent: String,
    agent_user: String,
    user: String,
    customer: String,
    connected: String,
    queued: String,
    trunk: String,
    channel_account: String,
    flow: String,
}

impl World {
    async fn build(s: &Server, admin: Session, prefix: &str) -> World {
        let tenant = admin.user["tenant"].as_str().expect("tenant").to_owned();
        // the same names in both tenants: names are unique per tenant only
        let skill = admin.new_skill("billing").await;
        let req = json!([{"skill": skill, "min_level": 1}]);
        let queue = id_of(
            &admin
                .new_queue(json!({"name": "billing", "required_skills": req}))
                .await,
        );
        let queue2 = id_of(
            &admin
                .new_queue(json!({"name": "escalations", "required_skills": req}))
                .await,
        );
        let a = admin
            .new_agent(
                &format!("{prefix}-agent"),
                &[(&skill, 5)],
                Some(json!({"per_channel": {"task": 1}})),
            )
            .await;
        let agent = id_of(&a);
        let agent_user = a["user_id"].as_str().expect("user_id").to_owned();
        let user = id_of(
            &admin
                .post(
                    "/api/v1/users",
                    json!({"username": format!("{prefix}-sup"), "password": "longpassword", "role": "supervisor"}),
                )
                .await
                .expect(201),
        );
        let customer = id_of(
            &admin
                .post(
                    "/api/v1/customers",
                    json!({"name": "Same Person", "contact_points": [{"kind": "phone", "value": PHONE}]}),
                )
                .await
                .expect(201),
        );
        let agent_session = agent_login(s, &format!("{prefix}-agent")).await;
        agent_session.set_state("available").await;
        let connected = admin
            .task_with(json!({"queue": "billing", "subject": "connected", "customer": customer}))
            .await;
        assert!(is(&connected, "offered", Some(&agent)), "{connected}");
        let connected = id_of(&connected);
        agent_session.accept(&connected).await.expect(200);
        let flow = id_of(
            &admin
                .post(
                    "/api/v1/flows",
                    json!({"name": "main", "definition": flow_definition()}),
                )
                .await
                .expect(201),
        );
        let queued = admin.task("billing", "queued").await;
        assert!(is(&queued, "queued", None), "{queued}");
        let trunk = id_of(
            &admin
                .post(
                    "/api/v1/voice/trunks",
                    json!({"name": "pbx", "allow": ["192.0.2.0/24"]}),
                )
                .await
                .expect(201),
        );
        let channel_account = id_of(
            &admin
                .post(
                    "/api/v1/channel-accounts",
                    json!({"provider": "twilio", "name": "sms", "queue": "billing",
                           "base_url": "http://127.0.0.1:9", "settings": {"account_sid": "AC1", "from": "+15550009999"},
                           "secrets": {"auth_token": "t"}}),
                )
                .await
                .expect(201),
        );
        World {
            trunk,
            channel_account,
            tenant,
            admin,
            agent_session,
            skill,
            queue,
            queue2,
            agent,
            agent_user,
            user,
            customer,
            connected,
            queued: id_of(&queued),
            flow,
        }
    }

    fn ids(&self) -> HashSet<String> {
        [
            &self.tenant,
            &self.skill,
            &self.queue,
            &self.queue2,
            &self.agent,
            &self.agent_user,
            &self.user,
            &self.customer,
            &self.connected,
            &self.queued,
            &self.trunk,
            &self.channel_account,
            &self.flow,
        ]
        .into_iter()
        .cloned()
        .collect()
    }
}

/// Every string anywhere in a JSON value.
fn strings(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[track_caller]
fn assert_none_of(v: &Value, theirs: &HashSet<String>, what: &str) {
    let mut seen = HashSet::new();
    strings(v, &mut seen);
    let leaked: Vec<&String> = seen.intersection(theirs).collect();
    assert!(
        leaked.is_empty(),
        "{what} shows the other tenant's {leaked:?}: {v}"
    );
}

fn list_ids(v: &Value) -> HashSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(id_of)
        .collect()
}

/// `me` tries everything on `them`'s ids.
/// A valid flow definition (the same name and shape in both tenants).
fn flow_definition() -> Value {
    json!({"start": "q", "nodes": {"q": {"type": "queue", "queue": "billing"}}})
}

async fn sweep(me: &World, them: &World) {
    let a = &me.admin;
    let theirs = them.ids();

    // their resources by id: 404, whatever the method
    let by_id = [
        (
            format!("/api/v1/skills/{}", them.skill),
            json!({"name": "hijacked"}),
        ),
        (
            format!("/api/v1/queues/{}", them.queue),
            json!({"priority": 99}),
        ),
        (
            format!("/api/v1/queues/{}", them.queue2),
            json!({"name": "hijacked"}),
        ),
        (
            format!("/api/v1/users/{}", them.user),
            json!({"display_name": "hijacked", "role": "admin"}),
        ),
        (
            format!("/api/v1/users/{}", them.agent_user),
            json!({"password": "hijacked-password"}),
        ),
        (
            format!("/api/v1/agents/{}", them.agent),
            json!({"skills": []}),
        ),
    ];
    for (path, patch) in &by_id {
        a.get(path).await.expect_error(404, "not_found");
        a.patch(path, patch.clone())
            .await
            .expect_error(404, "not_found");
        a.delete(path).await.expect_error(404, "not_found");
    }
    let state = format!("/api/v1/agents/{}/state", them.agent);
    a.get(&state).await.expect_error(404, "not_found");
    a.put(&state, json!({"state": "offline"}))
        .await
        .expect_error(404, "not_found");
    for it in [&them.connected, &them.queued] {
        a.get(&format!("/api/v1/interactions/{it}"))
            .await
            .expect_error(404, "not_found");
        a.end(it, "resolved").await.expect_error(404, "not_found");
        a.post(
            &format!("/api/v1/interactions/{it}/transfer"),
            json!({"queue": me.queue}),
        )
        .await
        .expect_error(404, "not_found");
        // accept/reject by our agent: refused without touching theirs (404 is
        // `accept_and_reject_of_another_tenants_interaction_are_404`)
        for action in ["accept", "reject"] {
            let r = me
                .agent_session
                .post(&format!("/api/v1/interactions/{it}/{action}"), json!({}))
                .await;
            assert!(matches!(r.status, 404 | 409), "{action}: {r:?}");
        }
    }
    a.get(&format!("/api/v1/customers/{}", them.customer))
        .await
        .expect_error(404, "not_found");
    // merging their customer into ours finds nothing
    a.post(
        &format!("/api/v1/customers/{}/merge", me.customer),
        json!({"other_id": them.customer}),
    )
    .await
    .expect_error(404, "not_found");

    // and, so that routes added later are covered too: every documented route with an `{id}`,
    // every method, each of their ids
    let doc = common::send(a.http.get(format!("{}/openapi.json", a.base)))
        .await
        .expect(200);
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.contains("{id}") {
            continue;
        }
        for method in item.as_object().expect("path item").keys() {
            for id in &theirs {
                let concrete = path
                    .replace("{id}", id)
                    .replace("{merge_id}", NIL)
                    .replace("{version}", "1");
                let body = match path.rsplit('/').next() {
                    Some("state") => json!({"state": "offline"}),
                    Some("end") => json!({"disposition": "resolved"}),
                    Some("transfer") => json!({"queue": me.queue}),
                    Some("messages") => json!({"text": "hello from another tenant"}),
                    Some("typing") | Some("hold") => json!({"on": true}),
                    Some("read") => json!({"seq": 1}),
                    Some("sip") => json!({"password": "another-tenants-phone"}),
                    Some("merge") => json!({"other_id": NIL}),
                    Some("continue") => json!({"channel": "sms", "account_id": NIL}),
                    Some("template") => json!({"name": "greeting", "language": "en"}),
                    Some("{id}") if path.starts_with("/api/v1/flows/") => {
                        json!({"definition": flow_definition()})
                    }
                    _ if path.starts_with("/api/v1/voice/trunks/") => json!({"name": "hijacked"}),
                    _ => json!({}),
                };
                let m: reqwest::Method = method.to_uppercase().parse().expect("method");
                let caller = if path.ends_with("/accept") || path.ends_with("/reject") {
                    &me.agent_session
                } else {
                    a
                };
                let r = common::send(
                    caller
                        .http
                        .request(m, format!("{}{concrete}", a.base))
                        .bearer_auth(&caller.token)
                        .json(&body),
                )
                .await;
                let ok = r.status == 404;
                assert!(ok, "{method} {concrete}: {r:?}");
                tried += 1;
            }
        }
    }
    assert!(tried >= 15 * theirs.len(), "swept {tried} calls");

    // an agent of ours sees none of theirs in what agents may list
    for path in [
        "/api/v1/skills",
        "/api/v1/queues",
        "/api/v1/agents",
        "/api/v1/customers",
        "/api/v1/flows",
        "/api/v1/flow-settings",
    ] {
        let v = me.agent_session.get(path).await.expect(200);
        assert_none_of(&v, &theirs, path);
    }

    // their ids inside our bodies: 422, and nothing is created or changed
    a.post(
        "/api/v1/interactions",
        json!({"queue": them.queue, "subject": "x"}),
    )
    .await
    .expect_error(422, "unknown_queue");
    a.post(
        "/api/v1/interactions",
        json!({"queue": "billing", "subject": "x", "customer": them.customer}),
    )
    .await
    .expect_error(422, "unknown_customer");
    a.post(
        "/api/v1/queues",
        json!({"name": "stolen-skill", "required_skills": [{"skill": them.skill}]}),
    )
    .await
    .expect_error(422, "invalid_value");
    a.post(
        "/api/v1/queues",
        json!({"name": "stolen-overflow", "overflow": [{"after_s": 5, "queue": them.queue}]}),
    )
    .await
    .expect_error(422, "invalid_value");
    a.patch(
        &format!("/api/v1/queues/{}", me.queue),
        json!({"required_skills": [{"skill": them.skill}]}),
    )
    .await
    .expect_error(422, "invalid_value");
    a.patch(
        &format!("/api/v1/queues/{}", me.queue),
        json!({"overflow": [{"after_s": 5, "queue": them.queue2}]}),
    )
    .await
    .expect_error(422, "invalid_value");
    a.post(
        "/api/v1/agents",
        json!({"user_id": them.user, "name": "borrowed"}),
    )
    .await
    .expect_error(422, "unknown_user");
    a.post(
        "/api/v1/agents",
        json!({"username": format!("{}-x", me.tenant), "password": "longpassword", "name": "x",
               "skills": [{"skill": them.skill, "level": 3}]}),
    )
    .await
    .expect_error(422, "invalid_value");
    a.patch(
        &format!("/api/v1/agents/{}", me.agent),
        json!({"skills": [{"skill": them.skill, "level": 3}]}),
    )
    .await
    .expect_error(422, "invalid_value");
    a.post(
        &format!("/api/v1/interactions/{}/transfer", me.connected),
        json!({"queue": them.queue}),
    )
    .await
    .expect_error(422, "unknown_queue");

    // lists: ours, never theirs
    for (path, mine) in [
        ("/api/v1/skills", &me.skill),
        ("/api/v1/queues", &me.queue),
        ("/api/v1/users", &me.user),
        ("/api/v1/agents", &me.agent),
        ("/api/v1/customers", &me.customer),
        ("/api/v1/interactions?limit=1000", &me.connected),
    ] {
        let v = a.get(path).await.expect(200);
        assert!(list_ids(&v).contains(mine), "{path} lists our {mine}: {v}");
        assert_none_of(&v, &theirs, path);
    }
    for filter in [
        format!("queue={}", them.queue),
        format!("customer={}", them.customer),
        format!("agent={}", them.agent),
    ] {
        assert_eq!(
            a.get(&format!("/api/v1/interactions?{filter}"))
                .await
                .expect(200),
            json!([]),
            "{filter}"
        );
    }
    // the same phone number is a different customer in each tenant
    let found = a
        .get("/api/v1/customers?contact=%2B15550001111")
        .await
        .expect(200);
    assert_eq!(list_ids(&found), HashSet::from([me.customer.clone()]));
    let mine = a
        .get(&format!("/api/v1/customers/{}", me.customer))
        .await
        .expect(200);
    assert_eq!(
        list_ids(&mine["history"]),
        HashSet::from([me.connected.clone()])
    );

    // the live view: our queues and our agents only
    let rt = a.get("/api/v1/stats/realtime").await.expect(200);
    assert_none_of(&rt, &theirs, "realtime");
    let queues: HashSet<String> = rt["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["queue_id"].as_str().expect("queue_id").to_owned())
        .collect();
    assert_eq!(queues, list_ids(&a.get("/api/v1/queues").await.expect(200)));
    let agents_total: u64 = rt["agents"]
        .as_object()
        .expect("agents")
        .values()
        .map(|n| n.as_u64().expect("count"))
        .sum();
    let agents = a.get("/api/v1/agents").await.expect(200);
    assert_eq!(agents_total, agents.as_array().expect("list").len() as u64);
    let billing = rt["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["queue_id"] == me.queue.as_str())
        .expect("our billing queue");
    assert_eq!(billing["waiting"], 1, "{billing}");
    assert_eq!(billing["agents"], json!({"busy": 1}), "{billing}");
}

/// What `w` looks like from inside its own tenant (to compare before and after the sweeps).
async fn snapshot(w: &World) -> Value {
    let a = &w.admin;
    let mut out = json!({});
    for path in [
        format!("/api/v1/skills/{}", w.skill),
        format!("/api/v1/queues/{}", w.queue),
        format!("/api/v1/queues/{}", w.queue2),
        format!("/api/v1/users/{}", w.user),
        format!("/api/v1/agents/{}", w.agent),
        format!("/api/v1/customers/{}", w.customer),
        format!("/api/v1/interactions/{}", w.connected),
        format!("/api/v1/interactions/{}", w.queued),
    ] {
        let mut v = a.get(&path).await.expect(200);
        // the live part of an agent's view moves with the clock
        if let Some(st) = v.get_mut("status") {
            st["since"] = Value::Null;
        }
        out[path] = v;
    }
    let mut users = a.get("/api/v1/users").await.expect(200);
    if let Some(list) = users.as_array_mut() {
        list.sort_by(|x, y| x["id"].as_str().cmp(&y["id"].as_str()));
    }
    out["users"] = users;
    out
}

#[tokio::test]
async fn two_tenants_sweep_every_route_and_nothing_crosses() {
    let dir = TempDir::new("tenants");
    let s = Server::start(&dir.0);
    // a second tenant, created with the CLI while the server runs (its engine starts on first use)
    admin_create(&dir.0, "acme", "acme-admin", "longpassword", "admin");
    let demo_admin = s.login("admin", "admin").await;
    let acme_admin = s.login("acme-admin", "longpassword").await;
    assert_eq!(acme_admin.user["role"], "admin");
    assert_ne!(demo_admin.user["tenant"], acme_admin.user["tenant"]);
    // what the new tenant starts with: nothing of the demo's
    assert_eq!(
        acme_admin.get("/api/v1/queues").await.expect(200),
        json!([])
    );
    assert_eq!(
        acme_admin.get("/api/v1/agents").await.expect(200),
        json!([])
    );
    assert_eq!(
        acme_admin.get("/api/v1/interactions").await.expect(200),
        json!([])
    );

    // both tenants' event streams, open from the start
    let mut demo_ev = Events::connect(&s, &demo_admin.token).await;
    let mut acme_ev = Events::connect(&s, &acme_admin.token).await;

    let demo = World::build(&s, demo_admin, "demo").await;
    let acme = World::build(&s, acme_admin, "acme").await;
    let (demo_before, acme_before) = (snapshot(&demo).await, snapshot(&acme).await);

    sweep(&demo, &acme).await;
    sweep(&acme, &demo).await;

    // nothing of either was changed by the other
    assert_eq!(snapshot(&demo).await, demo_before);
    assert_eq!(snapshot(&acme).await, acme_before);
    // and what a tenant may do to itself still works: the same calls, with its own ids
    acme.admin
        .patch(
            &format!("/api/v1/queues/{}", acme.queue),
            json!({"priority": 3}),
        )
        .await
        .expect(200);

    // markers: each tenant's last event comes after everything the other did
    for w in [&demo, &acme] {
        w.admin
            .put_state(&w.agent, json!({"state": "break", "reason": "marker"}))
            .await;
    }
    for w in [&demo, &acme] {
        w.admin
            .put_state(&w.agent, json!({"state": "available"}))
            .await;
    }
    for (ev, me, them) in [(&mut demo_ev, &demo, &acme), (&mut acme_ev, &acme, &demo)] {
        let is_mine = |e: &Value| {
            e["type"] == "agent.state_changed" && e["data"]["agent_id"] == me.agent.as_str()
        };
        let mut got = ev
            .until(Duration::from_secs(5), |e| {
                is_mine(e) && e["data"]["reason"] == "marker"
            })
            .await;
        got.extend(
            ev.until(Duration::from_secs(5), |e| {
                is_mine(e) && e["data"]["state"] == "available"
            })
            .await,
        );
        let got = Value::Array(got);
        assert_none_of(&got, &them.ids(), "the event stream");
        let events = got.as_array().expect("events");
        assert!(
            events.iter().all(|e| e["tenant"] == me.tenant.as_str()),
            "only own tenant's events"
        );
        // and it did carry this tenant's own flow
        assert!(
            events
                .iter()
                .any(|e| helpers::about(e, "interaction.accepted", &me.connected)),
            "own events arrive: {got}"
        );
    }
}

#[tokio::test]
async fn accept_and_reject_of_another_tenants_interaction_are_404() {
    let dir = TempDir::new("tenants-accept");
    let s = Server::start(&dir.0);
    admin_create(&dir.0, "acme", "acme-admin", "longpassword", "admin");
    let demo_admin = s.login("admin", "admin").await;
    let demo_agent = s.login("agent1", "agent").await;
    let acme_admin = s.login("acme-admin", "longpassword").await;
    acme_admin.new_queue(json!({"name": "inbox"})).await;
    let theirs = id_of(&acme_admin.task("inbox", "acme's").await);
    for id in [theirs.as_str(), NIL] {
        for action in ["accept", "reject"] {
            demo_agent
                .post(&format!("/api/v1/interactions/{id}/{action}"), json!({}))
                .await
                .expect_error(404, "not_found");
        }
        // end and transfer already answer 404
        demo_admin.end(id, "x").await.expect_error(404, "not_found");
    }
}

#[tokio::test]
async fn a_tenant_created_while_stopped_is_routed_after_a_restart() {
    let dir = TempDir::new("tenants-restart");
    let s = Server::start(&dir.0);
    s.login("admin", "admin").await;
    assert_eq!(s.terminate(), Some(0));
    admin_create(&dir.0, "acme", "acme-admin", "longpassword", "admin");
    let s = Server::start(&dir.0);
    // the demo tenant is still there, the new one works from the first call
    let demo = s.login("admin", "admin").await;
    let acme = s.login("acme-admin", "longpassword").await;
    assert_ne!(demo.user["tenant"], acme.user["tenant"]);
    let skill = acme.new_skill("sales").await;
    acme.new_queue(json!({"name": "sales", "required_skills": [{"skill": skill}]}))
        .await;
    let agent = id_of(&acme.new_agent("acme-agent", &[(&skill, 2)], None).await);
    agent_login(&s, "acme-agent")
        .await
        .set_state("available")
        .await;
    let t = acme.task("sales", "acme's first").await;
    assert!(is(&t, "offered", Some(&agent)), "{t}");
    // "sales" means each tenant's own queue
    let d = demo.task("sales", "demo's").await;
    assert!(is(&d, "queued", None), "{d}");
    assert_ne!(d["queue_id"], t["queue_id"]);
}
