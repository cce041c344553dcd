//! The interpreter, node by node, on virtual time.

use serde_json::{Map, Value, json};
use std::time::Duration;
use switchboard_flow::*;
use switchboard_model::{Channel, MonoTime};

fn def(v: Value) -> FlowDef {
    FlowDef::from_json(&v).expect("valid flow")
}

fn ctx(lang: &str) -> Context {
    Context {
        attributes: Map::new(),
        channel: Channel::Chat,
        language: lang.into(),
    }
}

fn at(secs: u64) -> Now {
    Now {
        mono: MonoTime::from_secs(secs),
        // A Wednesday, 12:00 UTC.
        wall: "2026-01-14T12:00:00Z".parse().expect("ts"),
    }
}

fn drain(run: &mut FlowRun) -> Vec<Output> {
    std::iter::from_fn(|| run.poll_output()).collect()
}

fn says(outs: &[Output]) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Say { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn ended(outs: &[Output]) -> Option<String> {
    outs.iter().find_map(|o| match o {
        Output::End { reason } => Some(reason.clone()),
        _ => None,
    })
}

fn chat_menu() -> Value {
    json!({
        "start": "hello",
        "nodes": {
            "hello": {"type": "say", "text": {"en": "Hello {{name}}!", "fa": "سلام {{name}}!"}, "next": "topic"},
            "topic": {"type": "menu", "prompt": {"en": "Topic?", "fa": "موضوع؟"}, "retries": 1,
                "options": [
                    {"key": "1", "label": {"en": "Sales", "fa": "فروش"}, "next": "sales"},
                    {"key": "2", "label": {"en": "Support", "fa": "پشتیبانی"}, "next": "support"}
                ], "on_invalid": "bye"},
            "sales": {"type": "set", "attributes": {"queue": "sales", "priority": 5}, "next": "q"},
            "support": {"type": "set", "attributes": {"queue": "support", "skills": ["billing"]}, "next": "q"},
            "q": {"type": "queue", "queue": "general"},
            "bye": {"type": "end", "message": "Bye", "reason": "no_topic"}
        }
    })
}

#[test]
fn say_substitutes_attributes_in_the_customer_language() {
    let mut c = ctx("fa");
    c.attributes.insert("name".into(), json!("Sara"));
    let mut run = FlowRun::start(def(chat_menu()), c, at(0));
    let outs = drain(&mut run);
    assert_eq!(says(&outs), vec!["سلام Sara!"]);
    match &outs[1] {
        Output::Menu {
            prompt,
            options,
            lang,
            ..
        } => {
            assert_eq!(prompt, "موضوع؟");
            assert_eq!(lang, "fa");
            assert_eq!(options[1].label, "پشتیبانی");
        }
        o => panic!("expected a menu, got {o:?}"),
    }
    assert_eq!(run.node(), Some("topic"));
}

#[test]
fn menu_matches_number_or_label_in_any_language_case_insensitively() {
    for answer in ["2", "support", "  SUPPORT. ", "پشتیبانی", "۲"] {
        let mut run = FlowRun::start(def(chat_menu()), ctx("en"), at(0));
        drain(&mut run);
        assert!(
            run.handle_input(at(1), Input::Text(answer.into())),
            "{answer}"
        );
        let outs = drain(&mut run);
        assert!(
            outs.contains(&Output::Chosen {
                node: "topic".into(),
                key: "2".into(),
                label: "Support".into()
            }),
            "{answer}: {outs:?}"
        );
        let q = outs.iter().find_map(|o| match o {
            Output::Queue(q) => Some(q.clone()),
            _ => None,
        });
        let q = q.expect("queued");
        assert_eq!(q.queue, "support");
        assert_eq!(q.skills, vec!["billing".to_string()]);
        assert_eq!(q.priority, None);
        assert!(run.is_queued());
    }
}

#[test]
fn menu_retries_then_takes_on_invalid() {
    let mut run = FlowRun::start(def(chat_menu()), ctx("en"), at(0));
    drain(&mut run);
    run.handle_input(at(1), Input::Text("pizza".into()));
    let outs = drain(&mut run);
    assert_eq!(says(&outs), vec!["Sorry, that is not one of the choices."]);
    assert!(matches!(outs[1], Output::Menu { .. }), "asked again");
    run.handle_input(at(2), Input::Text("pizza".into()));
    let outs = drain(&mut run);
    assert_eq!(says(&outs), vec!["Bye"]);
    assert_eq!(ended(&outs).as_deref(), Some("no_topic"));
    assert!(run.is_finished());
}

#[test]
fn menu_timeout_goes_to_on_timeout_with_dtmf() {
    let flow = def(json!({
        "start": "m",
        "nodes": {
            "m": {"type": "menu", "prompt": "1 sales, 2 support", "timeout_s": 5,
                "options": [{"key": "1", "label": "Sales", "next": "s"}, {"key": "2", "label": "Support", "next": "t"}],
                "on_timeout": "t"},
            "s": {"type": "queue", "queue": "sales"},
            "t": {"type": "queue", "queue": "support"}
        }
    }));
    let mut run = FlowRun::start(
        flow.clone(),
        Context {
            channel: Channel::Voice,
            ..ctx("en")
        },
        at(0),
    );
    drain(&mut run);
    assert_eq!(run.poll_timeout(), Some(MonoTime::from_secs(5)));
    run.handle_timeout(at(4));
    assert!(drain(&mut run).is_empty(), "not due yet");
    run.handle_timeout(at(5));
    let outs = drain(&mut run);
    assert!(matches!(&outs[0], Output::Queue(q) if q.queue == "support"));
    let mut run = FlowRun::start(flow, ctx("en"), at(0));
    drain(&mut run);
    run.handle_input(at(1), Input::Digits("1".into()));
    assert!(
        drain(&mut run)
            .iter()
            .any(|o| matches!(o, Output::Queue(q) if q.queue == "sales"))
    );
    assert_eq!(run.poll_timeout(), None);
}

fn collect_flow() -> FlowDef {
    def(json!({
        "start": "c",
        "nodes": {
            "c": {"type": "collect", "prompt": "Account number?", "max_digits": 4, "min_digits": 2,
                "timeout_s": 3, "into": "account", "next": "ok", "on_timeout": "none"},
            "ok": {"type": "say", "text": "Account {{account}}"},
            "none": {"type": "end", "reason": "no_account"}
        }
    }))
}

#[test]
fn collect_stops_at_max_digits_terminator_or_timeout() {
    let mut run = FlowRun::start(collect_flow(), ctx("en"), at(0));
    assert!(matches!(
        drain(&mut run)[0],
        Output::Collect {
            max_digits: 4,
            terminator: Some('#'),
            ..
        }
    ));
    run.handle_input(at(1), Input::Digits("12".into()));
    run.handle_input(at(2), Input::Digits("345".into()));
    assert_eq!(says(&drain(&mut run)), vec!["Account 1234"]);
    assert_eq!(run.attributes()["account"], json!("1234"));

    let mut run = FlowRun::start(collect_flow(), ctx("en"), at(0));
    drain(&mut run);
    run.handle_input(at(1), Input::Digits("77#".into()));
    assert_eq!(says(&drain(&mut run)), vec!["Account 77"]);

    // Each digit restarts the timer; too few digits at timeout take on_timeout.
    let mut run = FlowRun::start(collect_flow(), ctx("en"), at(0));
    drain(&mut run);
    run.handle_input(at(2), Input::Digits("7".into()));
    assert_eq!(run.poll_timeout(), Some(MonoTime::from_secs(5)));
    run.handle_timeout(at(5));
    assert_eq!(ended(&drain(&mut run)).as_deref(), Some("no_account"));

    // Chat: a typed number is complete as it is.
    let mut run = FlowRun::start(collect_flow(), ctx("en"), at(0));
    drain(&mut run);
    run.handle_input(at(1), Input::Text("my number is 4 2 1".into()));
    assert_eq!(says(&drain(&mut run)), vec!["Account 421"]);
}

fn hours_flow(open: Value, holidays: Value) -> FlowDef {
    def(json!({
        "start": "h",
        "nodes": {
            "h": {"type": "hours", "schedule": {"time_zone": "America/New_York", "open": open, "holidays": holidays},
                "open_next": "in", "closed_next": "out"},
            "in": {"type": "say", "text": "open"},
            "out": {"type": "end", "message": "We are closed.", "reason": "out_of_hours"}
        }
    }))
}

#[test]
fn hours_choose_open_or_closed_in_the_zone_and_on_holidays() {
    let weekdays =
        json!([{"days": ["mon","tue","wed","thu","fri"], "from": "09:00", "to": "17:00"}]);
    // 12:00 UTC on a January Wednesday is 07:00 in New York: closed.
    let mut run = FlowRun::start(hours_flow(weekdays.clone(), json!([])), ctx("en"), at(0));
    let outs = drain(&mut run);
    assert_eq!(says(&outs), vec!["We are closed."]);
    assert_eq!(ended(&outs).as_deref(), Some("out_of_hours"));
    let mut noon = at(0);
    noon.wall = "2026-01-14T17:00:00Z".parse().expect("ts");
    let mut run = FlowRun::start(hours_flow(weekdays.clone(), json!([])), ctx("en"), noon);
    assert_eq!(says(&drain(&mut run)), vec!["open"]);
    let mut run = FlowRun::start(hours_flow(weekdays, json!(["2026-01-14"])), ctx("en"), noon);
    assert_eq!(says(&drain(&mut run)), vec!["We are closed."]);
    let always = json!([{"days": ["mon","tue","wed","thu","fri","sat","sun"], "from": "00:00", "to": "24:00"}]);
    let mut run = FlowRun::start(hours_flow(always, json!([])), ctx("en"), at(0));
    assert_eq!(says(&drain(&mut run)), vec!["open"]);
}

#[test]
fn branch_compares_equals_in_greater_less() {
    let flow = def(json!({
        "start": "b",
        "nodes": {
            "b": {"type": "branch", "attribute": "tier", "cases": [
                {"equals": "gold", "next": "gold"},
                {"in": ["silver", "bronze"], "next": "metal"},
                {"greater": 100, "next": "big"},
                {"less": 0, "next": "neg"}
            ], "else": "other"},
            "gold": {"type": "say", "text": "gold"},
            "metal": {"type": "say", "text": "metal"},
            "big": {"type": "say", "text": "big"},
            "neg": {"type": "say", "text": "neg"},
            "other": {"type": "say", "text": "other"}
        }
    }));
    for (tier, want) in [
        (json!("GOLD"), "gold"),
        (json!("bronze"), "metal"),
        (json!(150), "big"),
        (json!("250"), "big"),
        (json!(-1), "neg"),
        (json!(50), "other"),
        (Value::Null, "other"),
    ] {
        let mut c = ctx("en");
        c.attributes.insert("tier".into(), tier.clone());
        let mut run = FlowRun::start(flow.clone(), c, at(0));
        assert_eq!(says(&drain(&mut run)), vec![want], "{tier}");
    }
}

fn http_flow() -> FlowDef {
    def(json!({
        "start": "lookup",
        "nodes": {
            "lookup": {"type": "http", "method": "POST", "url": "https://crm.example/find?n={{caller}}",
                "body": {"number": "{{caller}}"}, "timeout_s": 2,
                "map": {"tier": "/customer/tier", "language": "/customer/lang"},
                "next": "b", "on_error": "fallback"},
            "b": {"type": "say", "text": {"en": "tier {{tier}}", "ar": "فئة {{tier}}"}},
            "fallback": {"type": "say", "text": "no crm"}
        }
    }))
}

#[test]
fn http_emits_a_request_and_maps_the_response_into_attributes() {
    let mut c = ctx("en");
    c.attributes.insert("caller".into(), json!("+4420"));
    let mut run = FlowRun::start(http_flow(), c.clone(), at(0));
    let outs = drain(&mut run);
    let Output::HttpRequest(req) = &outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!(req.url, "https://crm.example/find?n=+4420");
    assert_eq!(req.body.as_deref(), Some(r#"{"number":"+4420"}"#));
    assert_eq!(req.timeout, Duration::from_secs(2));
    // A response to another id is not for this run.
    assert!(!run.handle_input(
        at(1),
        Input::HttpResponse {
            id: req.id + 1,
            status: 200,
            body: "{}".into()
        }
    ));
    run.handle_input(
        at(1),
        Input::HttpResponse {
            id: req.id,
            status: 200,
            body: r#"{"customer":{"tier":"gold","lang":"ar"}}"#.into(),
        },
    );
    let outs = drain(&mut run);
    assert_eq!(says(&outs), vec!["فئة gold"]);
    assert_eq!(run.language(), "ar");

    for failure in [
        Input::HttpResponse {
            id: 1,
            status: 500,
            body: "{}".into(),
        },
        Input::HttpResponse {
            id: 1,
            status: 200,
            body: "not json".into(),
        },
        Input::HttpFailed { id: 1 },
    ] {
        let mut run = FlowRun::start(http_flow(), c.clone(), at(0));
        drain(&mut run);
        run.handle_input(at(1), failure);
        assert_eq!(says(&drain(&mut run)), vec!["no crm"]);
    }
    let mut run = FlowRun::start(http_flow(), c, at(0));
    drain(&mut run);
    run.handle_timeout(at(2));
    assert_eq!(says(&drain(&mut run)), vec!["no crm"]);
}

fn queue_flow(long_wait: u64) -> FlowDef {
    def(json!({
        "start": "q",
        "nodes": {
            "q": {"type": "queue", "queue": "support", "priority": 3, "skills": ["en"],
                "announce_every_s": 30, "long_wait_s": long_wait,
                "self_service_url": "https://help.demo.example", "email_follow_up": true}
        }
    }))
}

#[test]
fn queue_announces_position_every_n_seconds() {
    let mut run = FlowRun::start(queue_flow(600), ctx("en"), at(0));
    let outs = drain(&mut run);
    let Output::Queue(q) = &outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!((q.queue.as_str(), q.priority), ("support", Some(3)));
    assert_eq!(q.announce_every, Some(Duration::from_secs(30)));
    let update = |p, w| Input::QueueUpdate {
        position: p,
        wait: Duration::from_secs(w),
    };
    run.handle_input(at(1), update(3, 200));
    assert_eq!(
        says(&drain(&mut run)),
        vec!["You are number 3 in the queue. Estimated wait: about 4 minutes."]
    );
    run.handle_input(at(20), update(2, 100));
    assert!(drain(&mut run).is_empty(), "too soon");
    run.handle_input(at(31), update(1, 30));
    assert_eq!(
        says(&drain(&mut run)),
        vec!["You are number 1 in the queue. Estimated wait: under a minute."]
    );
    // Chat messages while waiting are for the agent.
    assert!(!run.handle_input(at(32), Input::Text("hello?".into())));
}

#[test]
fn long_wait_offers_self_service_and_email_follow_up() {
    let mut run = FlowRun::start(queue_flow(120), ctx("en"), at(0));
    drain(&mut run);
    run.handle_input(
        at(1),
        Input::QueueUpdate {
            position: 5,
            wait: Duration::from_secs(60),
        },
    );
    assert!(
        !drain(&mut run)
            .iter()
            .any(|o| matches!(o, Output::Menu { .. }))
    );
    run.handle_input(
        at(40),
        Input::QueueUpdate {
            position: 5,
            wait: Duration::from_secs(121),
        },
    );
    let outs = drain(&mut run);
    let menu = outs.iter().find_map(|o| match o {
        Output::Menu { options, .. } => Some(options.clone()),
        _ => None,
    });
    let keys: Vec<String> = menu.expect("offer").into_iter().map(|c| c.key).collect();
    assert_eq!(keys, vec!["1", "2", "9"]);
    assert!(run.open_menu().is_some(), "the offer can be shown again");
    run.handle_input(at(41), Input::Text("help center".into()));
    assert_eq!(
        says(&drain(&mut run)),
        vec!["Our help center: https://help.demo.example"]
    );
    run.handle_input(at(42), Input::Text("2".into()));
    assert_eq!(
        says(&drain(&mut run)),
        vec!["Please type your email address."]
    );
    run.handle_input(at(43), Input::Text("not an email".into()));
    assert_eq!(drain(&mut run).len(), 1, "asked again");
    run.handle_input(at(44), Input::Text(" Ana@Example.COM ".into()));
    let outs = drain(&mut run);
    assert!(outs.contains(&Output::FollowUp {
        email: "ana@example.com".into()
    }));
    assert_eq!(ended(&outs).as_deref(), Some("follow_up_requested"));
    assert!(run.is_finished());
}

#[test]
fn keep_waiting_closes_the_offer_for_good() {
    let mut run = FlowRun::start(queue_flow(0), ctx("en"), at(0));
    drain(&mut run);
    run.handle_input(
        at(1),
        Input::QueueUpdate {
            position: 1,
            wait: Duration::ZERO,
        },
    );
    assert!(
        drain(&mut run)
            .iter()
            .any(|o| matches!(o, Output::Menu { .. })),
        "threshold 0 offers at once"
    );
    assert!(run.handle_input(at(2), Input::Text("9".into())));
    drain(&mut run);
    run.handle_input(
        at(40),
        Input::QueueUpdate {
            position: 1,
            wait: Duration::from_secs(500),
        },
    );
    assert!(
        !drain(&mut run)
            .iter()
            .any(|o| matches!(o, Output::Menu { .. }))
    );
    assert!(
        !run.handle_input(at(41), Input::Text("2".into())),
        "no offer open"
    );
}

#[test]
fn voicemail_callback_and_end_finish_the_run() {
    let flow = def(json!({
        "start": "vm",
        "nodes": {
            "vm": {"type": "voicemail", "prompt": "Leave a message", "max_s": 60, "queue": "support"},
            "cb": {"type": "callback", "queue": "sales", "number_attribute": "phone"},
            "e": {"type": "end"}
        }
    }));
    let mut run = FlowRun::start(flow.clone(), ctx("en"), at(0));
    let outs = drain(&mut run);
    assert_eq!(says(&outs), vec!["Leave a message"]);
    assert!(outs.contains(&Output::Voicemail {
        queue: "support".into(),
        max: Duration::from_secs(60),
        silence: Some(Duration::from_secs(5)),
    }));
    // silence_s: 0 turns the silence detection off
    let quiet = def(json!({
        "start": "vm",
        "nodes": {"vm": {"type": "voicemail", "queue": "support", "silence_s": 0}}
    }));
    let outs = drain(&mut FlowRun::start(quiet, ctx("en"), at(0)));
    assert!(
        matches!(outs.as_slice(), [Output::Voicemail { max, silence: None, .. }] if max.as_secs() == 120),
        "{outs:?}"
    );
    assert!(run.is_finished());
    let mut f = flow.clone();
    f.start = "cb".into();
    let mut c = ctx("en");
    c.attributes.insert("phone".into(), json!("+15550100"));
    let mut run = FlowRun::start(f, c, at(0));
    let outs = drain(&mut run);
    assert!(
        matches!(outs.as_slice(), [Output::Callback { queue, number: Some(n), lang, .. }]
            if queue == "sales" && n == "+15550100" && lang == "en"),
        "{outs:?}"
    );
    let mut f = flow;
    f.start = "e".into();
    let mut run = FlowRun::start(f, ctx("en"), at(0));
    assert_eq!(
        drain(&mut run),
        vec![Output::End {
            reason: "flow_ended".into()
        }]
    );
}

#[test]
fn set_language_switches_texts_and_priority_strings_become_numbers() {
    let flow = def(json!({
        "start": "s",
        "nodes": {
            "s": {"type": "set", "attributes": {"language": "ar", "priority": "{{p}}"}, "next": "q"},
            "q": {"type": "queue", "queue": "vip", "priority": 1}
        }
    }));
    let mut c = ctx("en");
    c.attributes.insert("p".into(), json!(9));
    let mut run = FlowRun::start(flow, c, at(0));
    let outs = drain(&mut run);
    assert!(matches!(&outs[0], Output::Queue(q) if q.priority == Some(9)));
    assert_eq!(run.language(), "ar");
}

#[test]
fn a_loop_through_branch_stops_at_the_step_budget() {
    // A branch loop whose exit never holds: validation sees a loop only without waits, so
    // build it unvalidated the way a stored old definition could be.
    let flow: FlowDef = serde_json::from_value(json!({
        "start": "a",
        "nodes": {
            "a": {"type": "set", "attributes": {"x": 1}, "next": "b"},
            "b": {"type": "branch", "attribute": "x", "cases": [{"equals": 2, "next": "done"}], "else": "a"},
            "done": {"type": "end"}
        }
    }))
    .expect("shape");
    assert!(matches!(flow.validate(), Err(FlowError::Cycle(_))));
    let mut run = FlowRun::start(flow, ctx("en"), at(0));
    let outs = drain(&mut run);
    assert!(matches!(&outs[0], Output::Error { message, .. } if message.contains("steps")));
    assert_eq!(ended(&outs).as_deref(), Some("flow_error"));
    assert!(run.is_finished());
}

#[test]
fn follow_up_takes_an_email_outside_hours() {
    let flow = def(json!({
        "start": "closed",
        "nodes": {
            "closed": {"type": "say", "text": "We are closed.", "next": "msg"},
            "msg": {"type": "follow_up", "prompt": "Leave your email and we will write back."}
        }
    }));
    let mut run = FlowRun::start(flow, ctx("en"), at(0));
    assert_eq!(
        says(&drain(&mut run)),
        vec!["We are closed.", "Leave your email and we will write back."]
    );
    assert!(run.handle_input(at(1), Input::Text("tomorrow?".into())));
    assert_eq!(drain(&mut run).len(), 1, "asked again");
    run.handle_input(at(2), Input::Text("sam@example.org".into()));
    let outs = drain(&mut run);
    assert!(outs.contains(&Output::FollowUp {
        email: "sam@example.org".into()
    }));
    assert_eq!(ended(&outs).as_deref(), Some("follow_up_requested"));
    assert_eq!(
        run.attributes()["follow_up_email"],
        json!("sam@example.org")
    );
}

#[test]
fn a_queued_caller_is_offered_a_call_back_by_its_key_and_other_keys_do_nothing() {
    let d = def(json!({
        "start": "q",
        "nodes": {"q": {"type": "queue", "queue": "support", "announce_every_s": 30,
            "long_wait_s": 60, "callback": true, "callback_key": "7"}}
    }));
    let voice = Context {
        channel: Channel::Voice,
        ..ctx("en")
    };
    let mut run = FlowRun::start(d, voice, at(0));
    let outs = drain(&mut run);
    assert!(matches!(outs.as_slice(), [Output::Queue(q)] if q.callback));
    // Before the offer the key means nothing.
    assert!(!run.handle_input(at(1), Input::Digits("7".into())));
    let update = |p, w| Input::QueueUpdate {
        position: p,
        wait: Duration::from_secs(w),
    };
    // A short wait: the position only, no offer.
    run.handle_input(at(30), update(2, 40));
    let s = says(&drain(&mut run));
    assert_eq!(s.len(), 1, "{s:?}");
    // A long wait: the offer, with the configured key; on calls there is no chat menu.
    run.handle_input(at(60), update(2, 90));
    let outs = drain(&mut run);
    assert!(!outs.iter().any(|o| matches!(o, Output::Menu { .. })));
    let s = says(&outs);
    assert_eq!(
        s.len(),
        1,
        "one prompt, the offer after the position: {s:?}"
    );
    assert!(
        s[0].starts_with("You are number 2") && s[0].contains("press 7"),
        "{s:?}"
    );
    // Another key is ignored; the call back key asks for the call back.
    assert!(!run.handle_input(at(61), Input::Digits("1".into())));
    assert!(run.handle_input(at(62), Input::Digits("7".into())));
    let outs = drain(&mut run);
    assert!(
        outs.iter().any(
            |o| matches!(o, Output::Callback { queue, number: None, .. } if queue == "support")
        )
    );
    assert_eq!(ended(&outs).as_deref(), Some("callback_requested"));
    assert!(run.is_finished());
}

#[test]
fn a_bad_callback_key_is_refused() {
    let v = json!({"start": "q", "nodes": {"q": {"type": "queue", "queue": "s", "callback": true, "callback_key": "12"}}});
    assert!(FlowDef::from_json(&v).is_err());
}

/// The call back confirmation: the built-in one in the run's language (en, ar, fa; another
/// language falls back to English and is spoken as English), or the node's own text.
#[test]
fn a_call_back_is_confirmed_in_the_callers_language_or_by_the_nodes_text() {
    let voice = |lang: &str| Context {
        channel: Channel::Voice,
        ..ctx(lang)
    };
    let confirmation = |outs: &[Output], number: &str| {
        outs.iter()
            .find_map(|o| match o {
                Output::Callback { confirm, lang, .. } => {
                    let mut attrs = Map::new();
                    attrs.insert("number".into(), json!(number));
                    Some(render(confirm, lang, &attrs))
                }
                _ => None,
            })
            .expect("a call back")
    };
    let queue = def(json!({
        "start": "q",
        "nodes": {"q": {"type": "queue", "queue": "support", "callback": true}}
    }));
    let mut said = Vec::new();
    for lang in ["en", "ar", "fa", "de"] {
        let mut run = FlowRun::start(queue.clone(), voice(lang), at(0));
        drain(&mut run);
        run.handle_input(
            at(10),
            Input::QueueUpdate {
                position: 1,
                wait: Duration::from_secs(60),
            },
        );
        drain(&mut run);
        assert!(run.handle_input(at(11), Input::Digits("1".into())));
        said.push(confirmation(&drain(&mut run), "4 4 2"));
    }
    assert_eq!(
        said[0],
        (
            "Thank you. We will call you back at 4 4 2.".to_owned(),
            "en".to_owned()
        )
    );
    assert_eq!(
        said[1],
        (
            "شكراً لك. سنتصل بك على الرقم 4 4 2.".to_owned(),
            "ar".to_owned()
        )
    );
    assert_eq!(said[2].1, "fa");
    assert!(
        said[2].0.contains("4 4 2") && said[2].0.contains("تماس"),
        "{:?}",
        said[2]
    );
    assert_eq!(
        said[3], said[0],
        "no German variant: English, spoken as English"
    );

    // A queue node's own confirmation, with a variant per language.
    let own = def(json!({
        "start": "q",
        "nodes": {"q": {"type": "queue", "queue": "support", "callback": true,
            "callback_confirm_text": {"en": "We call {{number}} soon.", "fa": "به زودی با {{number}} تماس می‌گیریم."}}}
    }));
    let mut run = FlowRun::start(own, voice("fa"), at(0));
    drain(&mut run);
    run.handle_input(
        at(10),
        Input::QueueUpdate {
            position: 1,
            wait: Duration::from_secs(60),
        },
    );
    drain(&mut run);
    assert!(run.handle_input(at(11), Input::Digits("1".into())));
    assert_eq!(
        confirmation(&drain(&mut run), "5"),
        ("به زودی با 5 تماس می‌گیریم.".to_owned(), "fa".to_owned())
    );

    // A callback node's own (a plain text is said in the run's language) and the built-in.
    let node = def(json!({
        "start": "cb",
        "nodes": {"cb": {"type": "callback", "queue": "sales", "confirm_text": "OK: {{number}}"}}
    }));
    let mut run = FlowRun::start(node, voice("ar"), at(0));
    assert_eq!(
        confirmation(&drain(&mut run), "1 2"),
        ("OK: 1 2".to_owned(), "ar".to_owned())
    );
    let node = def(json!({
        "start": "cb",
        "nodes": {"cb": {"type": "callback", "queue": "sales"}}
    }));
    let mut run = FlowRun::start(node, voice("ar"), at(0));
    assert_eq!(confirmation(&drain(&mut run), "1").1, "ar");
    assert_eq!(
        render(&callback_no_number(), "fa", &Map::new()).1,
        "fa",
        "the apology for an unknown number is in Persian too"
    );
}
