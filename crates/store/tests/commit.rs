//! A batch commit writes an interaction changed several times once, as it was last, and appends
//! events in multi-row statements: the stored events keep the batch's order and their sequence
//! numbers, across statement boundaries and across batches.

mod common;

use serde_json::json;
use switchboard_model::{Channel, InteractionId, InteractionState, TenantId};
use switchboard_store::{Change, Interaction, NewEvent, Store};

fn interaction(tenant: TenantId, n: u128, state: InteractionState, at: i64) -> Interaction {
    Interaction {
        id: InteractionId::from_u128(n),
        tenant,
        channel: Channel::Voice,
        state,
        queue: None,
        priority: 0,
        subject: Some(format!("call {n} at {at}")),
        customer: None,
        attributes: json!({"at": at}),
        agent: None,
        disposition: None,
        notes: None,
        created_at: 0,
        waiting_since: Some(0),
        offered_at: None,
        answered_at: None,
        ended_at: None,
        updated_at: at,
    }
}

fn event(tenant: TenantId, n: u128, k: usize) -> NewEvent {
    NewEvent {
        tenant,
        interaction: Some(InteractionId::from_u128(n)),
        agent: None,
        kind: format!("test.step_{k}"),
        at: k as i64,
        data: json!({"k": k}),
    }
}

#[tokio::test]
async fn a_batch_keeps_event_order_and_the_last_state_of_each_interaction() {
    let dir = std::env::temp_dir().join(format!("sb-store-commit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::open_sqlite(&dir.join("t.db")).await.expect("open");
    let tenant = common::tenant(&store, 1).await;

    // 3 interactions, each saved after every one of its events; 150 events in all, so the
    // events take three statements and the interactions' saves outnumber the rows written.
    let states = [
        InteractionState::Queued,
        InteractionState::Offered,
        InteractionState::Connected,
    ];
    let mut changes = Vec::new();
    for k in 0..150usize {
        let n = (k % 3) as u128 + 1;
        changes.push(Change::Event(event(tenant, n, k)));
        changes.push(Change::Interaction(interaction(
            tenant,
            n,
            states[(k / 3) % 3],
            k as i64,
        )));
    }
    let stored = store.commit(&changes).await.expect("commit");
    assert_eq!(stored.len(), 150);
    for (k, e) in stored.iter().enumerate() {
        assert_eq!(
            e.kind,
            format!("test.step_{k}"),
            "stored in the batch's order"
        );
    }
    assert!(
        stored.windows(2).all(|w| w[0].seq < w[1].seq),
        "sequence numbers grow in the batch's order"
    );

    // What was read back is what was answered, event for event.
    for n in 1..=3u128 {
        let id = InteractionId::from_u128(n);
        let back = store.interaction_events(tenant, id).await.expect("events");
        let answered: Vec<_> = stored
            .iter()
            .filter(|e| e.interaction == Some(id))
            .map(|e| (e.seq, e.kind.clone(), e.data.clone()))
            .collect();
        let read: Vec<_> = back
            .iter()
            .map(|e| (e.seq, e.kind.clone(), e.data.clone()))
            .collect();
        assert_eq!(read, answered);
        assert_eq!(read.len(), 50);
        // The last save of interaction n is at k = 147 + (n - 1).
        let last_k = 147 + (n as i64 - 1);
        let it = store
            .interaction(tenant, id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(it.updated_at, last_k);
        assert_eq!(it.attributes, json!({"at": last_k}));
        assert_eq!(it.state, states[(last_k as usize / 3) % 3]);
    }

    // A second batch continues the sequence.
    let more = store
        .commit(&[Change::Event(event(tenant, 1, 150))])
        .await
        .expect("commit");
    assert_eq!(more.len(), 1);
    assert!(more[0].seq > stored[149].seq);
    let _ = std::fs::remove_dir_all(&dir);
}
