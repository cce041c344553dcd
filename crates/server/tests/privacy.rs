//! DESIGN rule 7: personal data (phone numbers, emails, message text) never reaches a log line,
//! even at debug level.

mod common;

use common::{Server, TempDir};
use serde_json::json;

#[tokio::test]
async fn personal_data_stays_out_of_the_log() {
    let dir = TempDir::new("privacy");
    let s = Server::start_with(&dir.0, &[], &[("SWITCHBOARD_LOG", "debug")]);
    let admin = s.login("admin", "admin").await;
    let phone = "+15557654321";
    let email = "layla.private@example.org";
    let c = admin
        .post(
            "/api/v1/customers",
            json!({"name": "Layla", "contact_points": [
            {"kind": "phone", "value": phone}, {"kind": "email", "value": email}]}),
        )
        .await
        .expect(201);
    let cid = c["id"].as_str().expect("id");
    admin
        .get(&format!("/api/v1/customers?contact={email}"))
        .await
        .expect(200);
    admin
        .post(
            "/api/v1/interactions",
            json!({"queue": "support", "subject": "refund", "customer": cid,
            "attributes": {"note": "card ending 4242"}}),
        )
        .await
        .expect(201);
    // a failed login names neither the password nor (for a wrong one) echo the secret
    let _ = common::send(
        s.http
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": email, "password": "hunter2-secret"})),
    )
    .await;
    // an invalid contact point makes an error response, not a log line with the value
    admin
        .post(
            "/api/v1/customers",
            json!({"name": "X", "contact_points": [{"kind": "phone", "value": "+1-800-SECRET"}]}),
        )
        .await
        .expect(422);
    let log = s.log();
    assert!(
        log.contains("DEBUG") || log.contains("INFO") || log.contains("WARN"),
        "the server logged something at debug level:\n{log}"
    );
    for secret in [
        phone,
        email,
        "hunter2-secret",
        "card ending 4242",
        "800-SECRET",
    ] {
        assert!(!log.contains(secret), "{secret:?} leaked into the log");
    }
}
