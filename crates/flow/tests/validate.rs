//! Validation names the node at fault.

use serde_json::json;
use switchboard_flow::{FlowDef, FlowError};

fn check(v: serde_json::Value) -> Result<FlowDef, FlowError> {
    FlowDef::from_json(&v)
}

#[test]
fn errors_name_the_node() {
    let e = check(json!({"start": "x", "nodes": {"a": {"type": "end"}}})).unwrap_err();
    assert_eq!(e, FlowError::MissingStart("x".into()));

    let e =
        check(json!({"start": "a", "nodes": {"a": {"type": "say", "text": "hi", "next": "b"}}}))
            .unwrap_err();
    assert_eq!(
        e,
        FlowError::Dangling {
            node: "a".into(),
            target: "b".into()
        }
    );
    assert_eq!(e.node(), Some("a"));

    let e = check(json!({"start": "h", "nodes": {
        "h": {"type": "hours", "schedule": {"time_zone": "Nowhere/City", "open": []}, "open_next": "e", "closed_next": "e"},
        "e": {"type": "end"}}})).unwrap_err();
    assert!(
        matches!(&e, FlowError::Invalid { node, message } if node == "h" && message.contains("Nowhere/City")),
        "{e}"
    );

    let e = check(json!({"start": "m", "nodes": {
        "m": {"type": "menu", "prompt": "?", "options": [{"key": "12", "label": "x", "next": "e"}]},
        "e": {"type": "end"}}}))
    .unwrap_err();
    assert!(
        matches!(&e, FlowError::Invalid { node, .. } if node == "m"),
        "{e}"
    );

    let e = check(json!({"start": "m", "nodes": {
        "m": {"type": "menu", "prompt": "?", "options": [
            {"key": "1", "label": "x", "next": "e"}, {"key": "1", "label": "y", "next": "e"}]},
        "e": {"type": "end"}}}))
    .unwrap_err();
    assert!(e.to_string().contains("used twice"), "{e}");

    let e = check(json!({"start": "c", "nodes": {
        "c": {"type": "collect", "max_digits": 4, "terminator": "x", "into": "n", "next": "e"},
        "e": {"type": "end"}}}))
    .unwrap_err();
    assert!(
        matches!(&e, FlowError::Invalid { node, .. } if node == "c"),
        "{e}"
    );

    let e = check(json!({"start": "a", "nodes": {
        "a": {"type": "say", "text": "1", "next": "b"},
        "b": {"type": "set", "attributes": {}, "next": "a"}}}))
    .unwrap_err();
    assert!(matches!(&e, FlowError::Cycle(ns) if ns.len() == 2), "{e}");

    let e = check(json!({"start": "a", "nodes": {"a": {"type": "dance"}}})).unwrap_err();
    assert!(matches!(e, FlowError::Shape(_)));
}

#[test]
fn a_loop_through_a_menu_is_fine() {
    check(json!({"start": "m", "nodes": {
        "m": {"type": "menu", "prompt": "?", "options": [{"key": "1", "label": "again", "next": "s"}]},
        "s": {"type": "say", "text": "once more", "next": "m"}}}))
    .expect("a menu waits for input");
}
