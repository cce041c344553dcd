//! One customer across channels: automatic matching on exact contact points (SMS and WhatsApp
//! from one number are one customer), a manual merge of the web-chat customer into it, the
//! timeline of chat, SMS and WhatsApp in time order, and an undo that restores exactly.

mod common;
mod helpers;
mod messaging_support;

use common::{Server, TempDir};
use messaging_support::{Center, Fake, chat, meta_hook, twilio_hook};
use serde_json::{Value, json};
use std::time::Duration;

async fn customer_of(c: &Center, interaction: &str) -> String {
    let v = c
        .admin
        .get(&format!("/api/v1/interactions/{interaction}"))
        .await
        .expect(200);
    v["customer_id"].as_str().expect("customer").to_owned()
}

/// A customer without the `updated_at` of its interactions (moving them is a change to them).
fn without_updates(mut v: Value) -> Value {
    for h in v["history"].as_array_mut().into_iter().flatten() {
        h.as_object_mut().expect("object").remove("updated_at");
    }
    v
}

fn channels(timeline: &Value) -> Vec<String> {
    timeline
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["channel"].as_str().expect("channel").to_owned())
        .collect()
}

#[tokio::test]
async fn one_customer_across_chat_sms_and_whatsapp_with_merge_and_exact_undo() {
    let dir = TempDir::new("msg-customers");
    let s = Server::start(&dir.0);
    let fake = Fake::start().await;
    let c = Center::build(&s).await;
    let (_, sms_hook) = c
        .account(
            "twilio",
            &fake.base,
            json!({"account_sid": "AC1", "from": "+15550001000"}),
            json!({"auth_token": "tok"}),
        )
        .await;
    let (_, wa_hook) = c
        .account(
            "whatsapp",
            &fake.base,
            json!({"phone_number_id": "PN1"}),
            json!({"access_token": "a", "app_secret": "sec", "verify_token": "v"}),
        )
        .await;

    let chat_id = chat(&s, "sara@example.com").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    twilio_hook(
        &s,
        &sms_hook,
        "tok",
        &[
            ("MessageSid", "SM1"),
            ("From", "+15557654321"),
            ("Body", "sms here"),
        ],
    )
    .await
    .expect(200);
    let sms_id = c.accept_offer().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let wa = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Sara"}, "wa_id": "15557654321"}],
        "messages": [{"from": "15557654321", "id": "wamid.1", "timestamp": "1", "type": "text", "text": {"body": "wa here"}}]}}]}]});
    meta_hook(&s, &wa_hook, "sec", &wa).await.expect(200);
    let wa_id = c.accept_offer().await;

    // automatic matching: SMS and WhatsApp from one number are one customer; the chat is another
    let phone_customer = customer_of(&c, &sms_id).await;
    assert_eq!(customer_of(&c, &wa_id).await, phone_customer);
    let chat_customer = customer_of(&c, &chat_id).await;
    assert_ne!(chat_customer, phone_customer);
    let before = c
        .admin
        .get(&format!("/api/v1/customers/{chat_customer}"))
        .await
        .expect(200);
    let phone_before = c
        .admin
        .get(&format!("/api/v1/customers/{phone_customer}"))
        .await
        .expect(200);

    // merge by hand (an agent may); it is an event with what moved
    let m = c
        .agent
        .post(
            &format!("/api/v1/customers/{phone_customer}/merge"),
            json!({"other_id": chat_customer}),
        )
        .await
        .expect(201);
    assert_eq!(m["moved"]["interactions"], json!([chat_id]));
    assert_eq!(
        m["moved"]["contact_points"],
        json!([["email", "sara@example.com"]])
    );
    c.admin
        .get(&format!("/api/v1/customers/{chat_customer}"))
        .await
        .expect_error(404, "not_found");
    assert_eq!(customer_of(&c, &chat_id).await, phone_customer);
    let tl = c
        .agent
        .get(&format!("/api/v1/customers/{phone_customer}/timeline"))
        .await
        .expect(200);
    assert_eq!(channels(&tl), ["chat", "sms", "whatsapp"], "{tl}");
    let starts: Vec<&str> = tl
        .as_array()
        .expect("tl")
        .iter()
        .map(|e| e["started_at"].as_str().expect("t"))
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    assert_eq!(tl[1]["messages"], 1);
    // the web chat customer found by email is now the phone customer
    let found = c
        .admin
        .get("/api/v1/customers?contact=sara@example.com")
        .await
        .expect(200);
    assert_eq!(found[0]["id"], phone_customer.as_str());
    // merging into itself or an unknown customer is refused
    c.agent
        .post(
            &format!("/api/v1/customers/{phone_customer}/merge"),
            json!({"other_id": phone_customer}),
        )
        .await
        .expect_error(422, "invalid_value");

    // undo: exactly what was there before
    let mid = m["id"].as_str().expect("merge id");
    let u = c
        .agent
        .post(
            &format!("/api/v1/customers/{phone_customer}/merges/{mid}/undo"),
            json!({}),
        )
        .await
        .expect(200);
    assert!(u["undone_at"].is_string());
    let after = c
        .admin
        .get(&format!("/api/v1/customers/{chat_customer}"))
        .await
        .expect(200);
    assert_eq!(without_updates(after), without_updates(before));
    let phone_after = c
        .admin
        .get(&format!("/api/v1/customers/{phone_customer}"))
        .await
        .expect(200);
    assert_eq!(without_updates(phone_after), without_updates(phone_before));
    assert_eq!(customer_of(&c, &chat_id).await, chat_customer);
    let tl = c
        .agent
        .get(&format!("/api/v1/customers/{phone_customer}/timeline"))
        .await
        .expect(200);
    assert_eq!(channels(&tl), ["sms", "whatsapp"]);
    c.agent
        .post(
            &format!("/api/v1/customers/{phone_customer}/merges/{mid}/undo"),
            json!({}),
        )
        .await
        .expect_error(409, "cannot_undo");
    let merges = c
        .agent
        .get(&format!("/api/v1/customers/{phone_customer}/merges"))
        .await
        .expect(200);
    assert_eq!(merges.as_array().map(Vec::len), Some(1));

    // continue the SMS conversation by email: recorded for the email channel
    let cont = c
        .agent
        .post(
            &format!("/api/v1/interactions/{sms_id}/continue"),
            json!({"channel": "email", "to": "Sara@Example.com"}),
        )
        .await
        .expect(200);
    assert_eq!(cont["channel"], "email");
    assert_eq!(cont["contact"], "sara@example.com");
    let it = c
        .agent
        .get(&format!("/api/v1/interactions/{sms_id}"))
        .await
        .expect(200);
    assert!(
        it["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "interaction.continued")
    );
    // and back to SMS: the next reply goes through the SMS provider, same history
    let acc = c.admin.get("/api/v1/channel-accounts").await.expect(200);
    let sms_acc = acc
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["provider"] == "twilio")
        .expect("sms")["id"]
        .clone();
    c.agent
        .post(
            &format!("/api/v1/interactions/{sms_id}/continue"),
            json!({"channel": "sms", "account_id": sms_acc}),
        )
        .await
        .expect(200);
    c.reply(&sms_id, "following up by SMS").await.expect(201);
    fake.wait("/Messages.json", 1).await;
    assert_eq!(c.messages(&sms_id).await.len(), 2);
}

/// The desktop's history: an agent handling a customer's contact reads the customer's earlier
/// conversations, whoever handled them; not those of other customers, and not once it no longer
/// handles one of theirs.
#[tokio::test]
async fn an_agent_reads_the_earlier_conversations_of_the_customer_it_is_handling() {
    let dir = TempDir::new("history-read");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let agent1 = s.login("agent1", "agent").await;
    let agent2 = s.login("agent2", "agent").await;
    let new_customer = |name: &'static str| {
        let sup = &sup;
        async move {
            let c = sup
                .post("/api/v1/customers", json!({"name": name}))
                .await
                .expect(201);
            c["id"].as_str().expect("id").to_owned()
        }
    };
    let (rana, omid) = (new_customer("Rana").await, new_customer("Omid").await);
    let task_for = |customer: String, subject: &'static str| {
        let sup = &sup;
        async move {
            let t = sup
                .post(
                    "/api/v1/interactions",
                    json!({"queue": "support", "subject": subject, "customer": customer}),
                )
                .await
                .expect(201);
            t["id"].as_str().expect("id").to_owned()
        }
    };
    let note = |id: &str, text: &str| {
        let (sup, path) = (&sup, format!("/api/v1/interactions/{id}/messages"));
        let body = json!({"text": text, "internal": true});
        async move { sup.post(&path, body).await }
    };

    // Earlier: agent1 handled one contact of Rana's, another of Omid's is waiting.
    agent1.set_state("available").await;
    let earlier = task_for(rana.clone(), "Refund for order 1042").await;
    agent1.wait_for(&earlier, |v| v["state"] == "offered").await;
    agent1
        .post(&format!("/api/v1/interactions/{earlier}/accept"), json!({}))
        .await
        .expect(200);
    note(&earlier, "Refunded by bank transfer")
        .await
        .expect(201);
    agent1
        .post(
            &format!("/api/v1/interactions/{earlier}/end"),
            json!({"disposition": "resolved"}),
        )
        .await
        .expect(200);
    agent1.set_state("offline").await;
    let others = task_for(omid.clone(), "Omid's question").await;
    note(&others, "Omid's private matter").await.expect(201);
    let messages = |id: &str| format!("/api/v1/interactions/{id}/messages");

    // agent2 handles nothing of Rana's yet: her conversation is not its to read.
    agent2
        .get(&messages(&earlier))
        .await
        .expect_error(404, "not_found");

    // Rana writes again and agent2 is offered it: now it reads the earlier one, not Omid's.
    sup.post(
        &format!("/api/v1/interactions/{others}/end"),
        json!({"disposition": "no_action"}),
    )
    .await
    .expect(200);
    agent2.set_state("available").await;
    let now = task_for(rana.clone(), "The refund has not arrived").await;
    agent2.wait_for(&now, |v| v["state"] == "offered").await;
    let read = agent2.get(&messages(&earlier)).await.expect(200);
    let texts: Vec<&str> = read
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["Refunded by bank transfer"], "{read}");
    agent2
        .get(&messages(&others))
        .await
        .expect_error(404, "not_found");
    // Reading is all: it cannot write into the earlier one.
    agent2
        .post(&messages(&earlier), json!({"text": "hi", "internal": true}))
        .await
        .expect_error(404, "not_found");

    // Once its contact with Rana is over, the earlier one is closed to it again.
    agent2
        .post(&format!("/api/v1/interactions/{now}/accept"), json!({}))
        .await
        .expect(200);
    agent2
        .post(
            &format!("/api/v1/interactions/{now}/end"),
            json!({"disposition": "resolved"}),
        )
        .await
        .expect(200);
    agent2.wait_for(&now, |v| v["state"] == "ended").await;
    agent2
        .get(&messages(&earlier))
        .await
        .expect_error(404, "not_found");
}
