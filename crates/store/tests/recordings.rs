//! Recordings in the store: every read and write is scoped by tenant (another tenant's id
//! reads nothing and changes nothing), state changes happen once, and retention deadlines
//! follow the queue.

mod common;

use common::tenant;
use serde_json::json;
use switchboard_model::{
    Channel, InteractionId, InteractionState, PausedSpan, QueueId, RecordingId, RecordingState,
    TenantId,
};
use switchboard_store::recordings::{FinishedRecording, Recording, retention_deadline};
use switchboard_store::{Change, Interaction, NewEvent, Store};

const DAY: i64 = 86_400_000;

fn event(tenant: TenantId, it: InteractionId, kind: &str) -> NewEvent {
    NewEvent {
        tenant,
        interaction: Some(it),
        agent: None,
        kind: kind.into(),
        at: 0,
        data: json!({}),
    }
}

fn row(id: u128, tenant: TenantId, it: InteractionId, queue: QueueId) -> Recording {
    Recording {
        id: RecordingId::from_u128(id),
        tenant,
        interaction: it,
        queue: Some(queue),
        path: format!("recordings/{tenant}/2026/01/{id}.wav"),
        format: "wav".into(),
        channels: 2,
        sample_rate: 8000,
        state: RecordingState::Recording,
        started_at: 1_000,
        ended_at: None,
        duration_ms: None,
        size_bytes: None,
        paused_spans: Vec::new(),
        sha256: None,
        retain_until: None,
        deleted_at: None,
        deleted_by: None,
    }
}

fn finished(ended_at: i64, days: u32) -> FinishedRecording {
    FinishedRecording {
        ended_at,
        duration_ms: 500,
        size_bytes: 4044,
        paused_spans: vec![PausedSpan {
            from_ms: 100,
            to_ms: 200,
        }],
        sha256: "ab".repeat(32),
        retain_until: retention_deadline(ended_at, days),
    }
}

#[tokio::test]
async fn recordings_are_scoped_by_tenant_and_change_state_once() {
    let dir = std::env::temp_dir().join(format!("sb-store-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::open_sqlite(&dir.join("t.db")).await.expect("open");
    let (a, b) = (tenant(&store, 1).await, tenant(&store, 2).await);
    let it = InteractionId::from_u128(7);
    let queue = QueueId::from_u128(9);
    store
        .commit(&[Change::Interaction(Interaction {
            id: it,
            tenant: a,
            channel: Channel::Voice,
            state: InteractionState::Connected,
            queue: Some(queue),
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
        })])
        .await
        .expect("interaction");
    let r1 = row(1, a, it, queue);
    let e = store
        .begin_recording(&r1, event(a, it, "recording.started"))
        .await
        .expect("begin")
        .expect("event");
    assert_eq!(e.kind, "recording.started");
    assert_eq!(
        store.recording(a, r1.id).await.expect("read"),
        Some(r1.clone())
    );

    // the other tenant reads nothing and changes nothing
    assert_eq!(store.recording(b, r1.id).await.expect("read"), None);
    assert!(
        store
            .interaction_recordings(b, it)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store
            .finish_recording(b, r1.id, &finished(2_000, 5), event(b, it, "x"))
            .await
            .expect("finish"),
        None
    );
    assert_eq!(
        store
            .delete_recording(b, r1.id, 3, "admin:x", event(b, it, "x"))
            .await
            .expect("delete"),
        None
    );
    assert_eq!(
        store
            .set_queue_retention(b, queue, 1)
            .await
            .expect("retention"),
        0
    );
    assert!(
        store
            .interaction_events(b, it)
            .await
            .expect("events")
            .is_empty()
    );
    assert_eq!(
        store
            .recording(a, r1.id)
            .await
            .expect("read")
            .map(|r| r.state),
        Some(RecordingState::Recording)
    );

    // finished once: the second finish changes nothing and appends nothing
    let f = finished(2_000, 5);
    assert!(
        store
            .finish_recording(a, r1.id, &f, event(a, it, "recording.completed"))
            .await
            .expect("finish")
            .is_some()
    );
    assert!(
        store
            .finish_recording(a, r1.id, &finished(9_000, 1), event(a, it, "again"))
            .await
            .expect("finish")
            .is_none()
    );
    let got = store.recording(a, r1.id).await.expect("read").expect("row");
    assert_eq!(got.state, RecordingState::Complete);
    assert_eq!(got.ended_at, Some(2_000));
    assert_eq!(got.paused_spans, f.paused_spans);
    assert_eq!(got.retain_until, Some(2_000 + 5 * DAY));

    // retention follows the queue; 0 days keeps; the sweep sees only what is due
    assert!(
        store
            .expired_recordings(2_000 + 5 * DAY - 1, None, 10)
            .await
            .expect("due")
            .is_empty()
    );
    let due = store
        .expired_recordings(2_000 + 5 * DAY, None, 10)
        .await
        .expect("due");
    assert_eq!(due.iter().map(|r| r.id).collect::<Vec<_>>(), [r1.id]);
    assert_eq!(
        store
            .set_queue_retention(a, queue, 0)
            .await
            .expect("retention"),
        1
    );
    assert!(
        store
            .expired_recordings(i64::MAX, None, 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        store
            .set_queue_retention(a, queue, 1)
            .await
            .expect("retention"),
        1
    );
    assert_eq!(
        store
            .recording(a, r1.id)
            .await
            .expect("read")
            .expect("row")
            .retain_until,
        Some(2_000 + DAY)
    );

    // a recording still being written is neither due nor retained, and is found at start-up
    let r2 = row(2, a, it, queue);
    store
        .begin_recording(&r2, event(a, it, "recording.started"))
        .await
        .expect("begin");
    assert_eq!(
        store
            .unfinished_recordings(1_001)
            .await
            .expect("unfinished")
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [r2.id]
    );
    assert!(
        store
            .unfinished_recordings(1_000)
            .await
            .expect("unfinished")
            .is_empty()
    );
    assert_eq!(
        store
            .interaction_recordings(a, it)
            .await
            .expect("list")
            .len(),
        2
    );

    // deleted once, kept as a row
    assert!(
        store
            .delete_recording(a, r1.id, 5, "admin:x", event(a, it, "recording.deleted"))
            .await
            .expect("delete")
            .is_some()
    );
    assert!(
        store
            .delete_recording(a, r1.id, 6, "retention", event(a, it, "again"))
            .await
            .expect("delete")
            .is_none()
    );
    let got = store.recording(a, r1.id).await.expect("read").expect("row");
    assert_eq!(
        (
            got.state,
            got.deleted_at,
            got.deleted_by.as_deref(),
            got.retain_until
        ),
        (RecordingState::Deleted, Some(5), Some("admin:x"), None)
    );
    let kinds: Vec<String> = store
        .interaction_events(a, it)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "recording.started",
            "recording.completed",
            "recording.started",
            "recording.deleted"
        ]
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zero_days_is_no_deadline() {
    assert_eq!(retention_deadline(5, 0), None);
    assert_eq!(retention_deadline(5, 2), Some(5 + 2 * DAY));
    assert_eq!(retention_deadline(i64::MAX, 2), Some(i64::MAX));
}
