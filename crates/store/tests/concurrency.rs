//! Regression: concurrent writers on one SQLite file must wait for each other, never fail with
//! "database is locked" (a deferred transaction that reads and then writes used to).

mod common;

use serde_json::json;
use switchboard_model::{Channel, CustomerId, InteractionId, InteractionState, Sensitive};
use switchboard_store::{Change, ChatSession, Customer, Interaction, Message, Sender, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_messages_and_sessions_all_succeed_with_unique_seqs() {
    let dir = std::env::temp_dir().join(format!("sb-store-conc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::open_sqlite(&dir.join("t.db")).await.expect("open");
    let tenant = common::tenant(&store, 1).await;
    let it = Interaction {
        id: InteractionId::from_u128(7),
        tenant,
        channel: Channel::Chat,
        state: InteractionState::Queued,
        queue: None,
        priority: 0,
        subject: None,
        customer: None,
        attributes: json!({}),
        agent: None,
        disposition: None,
        notes: None,
        created_at: 0,
        waiting_since: Some(0),
        offered_at: None,
        answered_at: None,
        ended_at: None,
        updated_at: 0,
    };
    store
        .commit(&[Change::Interaction(it.clone())])
        .await
        .expect("interaction");

    let mut tasks = Vec::new();
    for i in 0..60u128 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // a message (read-then-write transaction) ...
            let m = Message {
                id: format!("m{i}"),
                tenant,
                interaction: InteractionId::from_u128(7),
                seq: 0,
                sender: Sender::Customer,
                author_id: None,
                author_name: None,
                body: Sensitive::new(format!("text {i}")),
                internal: false,
                client_id: Some(format!("c{i}")),
                created_at: 0,
                attachments: serde_json::json!([]),
            };
            let (stored, new, _) = store
                .append_message(&m, None)
                .await
                .expect("append never fails");
            assert!(new);
            // ... and a new customer with a chat session, racing with the others
            let c = CustomerId::from_u128(1000 + i);
            store
                .create_customer(&Customer {
                    id: c,
                    tenant,
                    name: "v".into(),
                    created_at: 0,
                    contact_points: vec![],
                })
                .await
                .expect("customer");
            store
                .create_chat_session(&ChatSession {
                    token_hash: format!("h{i}"),
                    tenant,
                    customer: c,
                    interaction: None,
                    created_at: 0,
                    last_seen_at: 0,
                })
                .await
                .expect("session");
            stored.seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("task"));
    }
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=60).collect::<Vec<i64>>(),
        "every message got its own seq"
    );
    let all = store
        .messages(tenant, InteractionId::from_u128(7), false)
        .await
        .expect("list");
    assert_eq!(all.len(), 60);
    let _ = std::fs::remove_dir_all(&dir);
}
