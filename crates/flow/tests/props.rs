//! Property: any definition, valid or not, and any inputs: the run never panics, and after each
//! step it has ended, waits for input or a timer, or stopped at the step budget.

use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_flow::*;
use switchboard_model::{Channel, MonoTime};

fn id() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d", "e"]).prop_map(str::to_owned)
}

fn node() -> impl Strategy<Value = Value> {
    prop_oneof![
        (id(), any::<bool>()).prop_map(|(n, has)| if has {
            json!({"type": "say", "text": {"en": "hi {{x}}", "ar": "مرحبا"}, "next": n})
        } else {
            json!({"type": "say", "text": "bye"})
        }),
        (id(), id(), 0u32..3, prop::option::of(0u64..5)).prop_map(|(a, b, r, t)| json!({
            "type": "menu", "prompt": "?", "retries": r, "timeout_s": t,
            "options": [{"key": "1", "label": "One", "next": a}, {"key": "2", "label": "Two", "next": b}],
            "on_invalid": a
        })),
        (id(), 1u32..5).prop_map(|(n, m)| json!({
            "type": "collect", "max_digits": m, "min_digits": 1, "timeout_s": 2, "into": "x", "next": n
        })),
        (id(), id()).prop_map(|(a, b)| json!({
            "type": "hours", "schedule": {"time_zone": "Europe/London",
                "open": [{"days": ["mon", "sat"], "from": "08:00", "to": "18:30"}], "holidays": ["2026-12-25"]},
            "open_next": a, "closed_next": b
        })),
        (id(), any::<i8>()).prop_map(|(n, v)| json!({"type": "set", "attributes": {"x": v, "language": "fa"}, "next": n})),
        (id(), id(), any::<i8>()).prop_map(|(a, b, v)| json!({
            "type": "branch", "attribute": "x", "cases": [{"greater": v, "next": a}], "else": b
        })),
        (id(), id()).prop_map(|(a, b)| json!({
            "type": "http", "url": "https://x.example/{{x}}", "timeout_s": 1, "map": {"x": "/x"}, "next": a, "on_error": b
        })),
        (0u64..200).prop_map(|lw| json!({
            "type": "queue", "queue": "q", "announce_every_s": 10, "long_wait_s": lw,
            "self_service_url": "https://help.example", "email_follow_up": true, "callback": true
        })),
        Just(json!({"type": "voicemail", "queue": "q"})),
        Just(json!({"type": "callback", "queue": "q"})),
        Just(json!({"type": "end", "message": "bye"})),
        id().prop_map(|n| json!({"type": "follow_up", "next": n})),
    ]
}

fn input() -> impl Strategy<Value = Option<Input>> {
    prop_oneof![
        Just(None), // a timeout
        "[0-9#*]{0,4}".prop_map(|d| Some(Input::Digits(d))),
        prop::sample::select(vec!["1", "2", "9", "one", "x@y.example", "nope", ""])
            .prop_map(|t| Some(Input::Text(t.into()))),
        (1u64..4, any::<bool>()).prop_map(|(id, ok)| Some(if ok {
            Input::HttpResponse {
                id,
                status: 200,
                body: r#"{"x": 5}"#.into(),
            }
        } else {
            Input::HttpFailed { id }
        })),
        (1usize..10, 0u64..400).prop_map(|(p, w)| Some(Input::QueueUpdate {
            position: p,
            wait: Duration::from_secs(w)
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn runs_never_panic_and_always_settle(
        nodes in prop::collection::vec(node(), 5),
        start in id(),
        inputs in prop::collection::vec(input(), 0..12),
    ) {
        let names = ["a", "b", "c", "d", "e"];
        let def_json = json!({
            "start": start,
            "nodes": names.iter().zip(nodes).map(|(n, v)| (n.to_string(), v)).collect::<serde_json::Map<_, _>>(),
        });
        let def: FlowDef = serde_json::from_value(def_json).expect("generated shapes parse");
        let _ = def.validate(); // valid or not, the run must cope
        let mut t = 0u64;
        let now = |t: u64| Now { mono: MonoTime::from_secs(t), wall: "2026-03-29T00:30:00Z".parse().expect("ts") };
        let ctx = Context { attributes: Default::default(), channel: Channel::Chat, language: "en".into() };
        let mut run = FlowRun::start(def, ctx, now(t));
        for i in inputs {
            let mut ended = false;
            while let Some(o) = run.poll_output() {
                if matches!(o, Output::End { .. } | Output::Voicemail { .. } | Output::Callback { .. }) {
                    ended = true;
                }
            }
            if ended {
                prop_assert!(run.is_finished());
            }
            // Settled: finished, or waiting at a node for input or a timer.
            prop_assert!(run.is_finished() || run.node().is_some());
            t += 3;
            match i {
                Some(i) => { run.handle_input(now(t), i); }
                None => {
                    if let Some(d) = run.poll_timeout() {
                        t = t.max(d.since_origin().as_secs());
                    }
                    run.handle_timeout(now(t));
                }
            }
        }
    }
}
