//! Each provider adapter end to end: real-shaped webhooks signed correctly and wrongly,
//! duplicates, media fetched and stored, replies checked at a fake of the provider, retries,
//! receipts, the 24-hour window, and opt-out keywords.

mod common;
mod helpers;
mod messaging_support;

use common::{Server, TempDir};
use messaging_support::{Center, Fake, meta_hook, post_hook, twilio_hook};
use serde_json::{Value, json};

const TWILIO_TOKEN: &str = "twilio-auth-token";
const CUSTOMER: &str = "+15557654321";

fn stored_media(s: &Server) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(s.data.join("media")) else {
        return out;
    };
    for d in dirs.flatten() {
        for f in std::fs::read_dir(d.path()).expect("dir").flatten() {
            out.push(std::fs::read(f.path()).expect("file"));
        }
    }
    out
}

#[tokio::test]
async fn twilio_sms_in_and_out_with_signatures_duplicates_retries_receipts_and_stop() {
    let dir = TempDir::new("msg-twilio");
    let s = Server::start(&dir.0);
    let fake = Fake::start().await;
    let c = Center::build(&s).await;
    let (account, hook) = c
        .account(
            "twilio",
            &fake.base,
            json!({"account_sid": "AC123", "from": "+15550001000"}),
            json!({"auth_token": TWILIO_TOKEN}),
        )
        .await;
    let media_url = format!("{}/media/tw1", fake.base);
    let inbound = [
        ("MessageSid", "SM-in-1"),
        ("AccountSid", "AC123"),
        ("From", "+1 (555) 765-4321"),
        ("To", "+15550001000"),
        ("Body", "Hello, my order is late"),
        ("NumMedia", "1"),
        ("MediaUrl0", media_url.as_str()),
        ("MediaContentType0", "image/jpeg"),
        ("SmsStatus", "received"),
    ];

    // wrong and missing signatures: 403 JSON, nothing stored
    let r = twilio_hook(&s, &hook, "not-the-token", &inbound).await;
    r.expect_error(403, "bad_signature");
    let r = post_hook(
        &s,
        &hook,
        "application/x-www-form-urlencoded",
        &[],
        b"MessageSid=x".to_vec(),
    )
    .await;
    r.expect_error(403, "bad_signature");
    assert!(s.log().contains("webhook signature missing or wrong"));
    assert!(!s.log().contains("555"), "no phone numbers in the log");

    // signed: 200 with empty TwiML; the same delivery again: 200 and nothing new
    let r = twilio_hook(&s, &hook, TWILIO_TOKEN, &inbound).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.as_str().is_some_and(|b| b.contains("<Response>")));
    let id = c.accept_offer().await;
    twilio_hook(&s, &hook, TWILIO_TOKEN, &inbound)
        .await
        .expect(200);
    let msgs = c.messages(&id).await;
    assert_eq!(
        msgs.len(),
        1,
        "a duplicate delivery stores nothing: {msgs:?}"
    );
    assert_eq!(msgs[0]["text"], "Hello, my order is late");
    let it = c
        .agent
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    assert_eq!(it["channel"], "sms");
    // the customer is known by the E.164 number
    let found = c
        .admin
        .get("/api/v1/customers?contact=%2B15557654321")
        .await
        .expect(200);
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    // media fetched with the account's basic auth and stored by content
    let media = fake.wait("/media/tw1", 1).await;
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("AC123:{TWILIO_TOKEN}"),
    );
    assert_eq!(media[0].header("authorization"), format!("Basic {basic}"));
    assert!(stored_media(&s).contains(&b"MEDIA-BYTES/media/tw1".to_vec()));
    let info = c
        .agent
        .get(&format!("/api/v1/interactions/{id}/messaging"))
        .await
        .expect(200);
    assert_eq!(info["channel"], "sms");
    assert_eq!(
        info["deliveries"][0]["attachments"][0]["content_type"],
        "image/jpeg"
    );
    assert_eq!(info["deliveries"][0]["attachments"][0]["size"], 21);

    // reply: the provider fails once with 500, then takes it; sent exactly as documented
    fake.script(500, "{}");
    let m = c.reply(&id, "Sorry! It ships today.").await.expect(201);
    let sends = fake.wait("/Messages.json", 2).await;
    for r in &sends {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/2010-04-01/Accounts/AC123/Messages.json");
        assert_eq!(r.header("authorization"), format!("Basic {basic}"));
        assert_eq!(
            r.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        let f = r.form();
        assert!(f.contains(&("To".into(), CUSTOMER.into())), "{f:?}");
        assert!(f.contains(&("From".into(), "+15550001000".into())));
        assert!(f.contains(&("Body".into(), "Sorry! It ships today.".into())));
    }
    let mid = m["id"].as_str().expect("id");
    c.wait_delivery(&id, mid, "sent").await;
    // Twilio's status callback: delivered (the fake answers sends with sid SM<request count>)
    let n = fake.requests("").len();
    let sid = format!("SM{n}");
    twilio_hook(
        &s,
        &hook,
        TWILIO_TOKEN,
        &[
            ("MessageSid", sid.as_str()),
            ("MessageStatus", "delivered"),
            ("AccountSid", "AC123"),
        ],
    )
    .await
    .expect(200);
    c.wait_delivery(&id, mid, "delivered").await;
    // a late "sent" does not move it back
    twilio_hook(
        &s,
        &hook,
        TWILIO_TOKEN,
        &[("MessageSid", sid.as_str()), ("MessageStatus", "sent")],
    )
    .await
    .expect(200);
    c.wait_delivery(&id, mid, "delivered").await;

    // STOP: recorded, confirmed once, further replies refused; START opts in again
    let stop = [
        ("MessageSid", "SM-in-2"),
        ("From", CUSTOMER),
        ("To", "+15550001000"),
        ("Body", "stop"),
    ];
    twilio_hook(&s, &hook, TWILIO_TOKEN, &stop)
        .await
        .expect(200);
    let confirm = fake.wait("/Messages.json", 3).await;
    assert!(
        confirm[2]
            .form()
            .iter()
            .any(|(k, v)| k == "Body" && v.contains("unsubscribed"))
    );
    c.reply(&id, "One more thing")
        .await
        .expect_error(409, "opted_out");
    let info = c
        .agent
        .get(&format!("/api/v1/interactions/{id}/messaging"))
        .await
        .expect(200);
    assert_eq!(info["opted_out"], true);
    let ev = c
        .agent
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    assert!(
        ev["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "contact_point.opted_out")
    );
    let start = [
        ("MessageSid", "SM-in-3"),
        ("From", CUSTOMER),
        ("To", "+15550001000"),
        ("Body", "START"),
    ];
    twilio_hook(&s, &hook, TWILIO_TOKEN, &start)
        .await
        .expect(200);
    c.reply(&id, "Welcome back").await.expect(201);
    fake.wait("/Messages.json", 4).await;
    let _ = account;
}

#[tokio::test]
async fn http_gateway_signs_both_ways() {
    let dir = TempDir::new("msg-gateway");
    let s = Server::start(&dir.0);
    let fake = Fake::start().await;
    let c = Center::build(&s).await;
    let secret = "gateway-secret";
    let (_, hook) = c
        .account(
            "http_sms",
            &fake.base,
            json!({"from": "+15550002000"}),
            json!({"hmac_secret": secret, "api_key": "k1"}),
        )
        .await;
    let body =
        json!({"id": "gw-in-1", "from": "00447700900123", "to": "+15550002000", "text": "hi"});
    let raw = body.to_string().into_bytes();
    let sign = |b: &[u8], k: &str| format!("sha256={}", messaging_support::hmac_sha256_hex(k, b));
    post_hook(
        &s,
        &hook,
        "application/json",
        &[("X-Switchboard-Signature", sign(&raw, "wrong"))],
        raw.clone(),
    )
    .await
    .expect_error(403, "bad_signature");
    post_hook(
        &s,
        &hook,
        "application/json",
        &[("X-Switchboard-Signature", sign(&raw, secret))],
        raw.clone(),
    )
    .await
    .expect(200);
    post_hook(
        &s,
        &hook,
        "application/json",
        &[("X-Switchboard-Signature", sign(&raw, secret))],
        raw,
    )
    .await
    .expect(200);
    let id = c.accept_offer().await;
    assert_eq!(c.messages(&id).await.len(), 1);
    c.reply(&id, "hello from us").await.expect(201);
    let sent = fake.wait("/messages", 1).await;
    let r = &sent[0];
    assert_eq!(r.path, "/messages");
    assert_eq!(r.header("authorization"), "Bearer k1");
    assert_eq!(r.header("x-switchboard-signature"), sign(&r.body, secret));
    let j = r.json();
    assert_eq!(j["to"], "+447700900123");
    assert_eq!(j["from"], "+15550002000");
    assert_eq!(j["text"], "hello from us");
}

fn whatsapp_message(id: &str, from: &str, text: &str) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550003000", "phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": text}}]
    }}]}]})
}

fn whatsapp_status(id: &str, status: &str) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550003000", "phone_number_id": "PN1"},
        "statuses": [{"id": id, "status": status, "timestamp": "1700000001", "recipient_id": "15557654321"}]
    }}]}]})
}

#[tokio::test]
async fn whatsapp_cloud_api_verification_messages_media_receipts_and_the_window() {
    let dir = TempDir::new("msg-whatsapp");
    let s = Server::start(&dir.0);
    let fake = Fake::start().await;
    let c = Center::build(&s).await;
    let (_, hook) = c
        .account(
            "whatsapp",
            &fake.base,
            json!({"phone_number_id": "PN1"}),
            json!({"access_token": "wa-token", "app_secret": "wa-secret", "verify_token": "wa-verify"}),
        )
        .await;
    // subscription handshake
    let r = s
        .http
        .get(s.url(&format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=wa-verify&hub.challenge=1158201444"
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "1158201444");
    let r = s
        .http
        .get(s.url(&format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);

    let msg = whatsapp_message("wamid.IN1", "15557654321", "Hola");
    meta_hook(&s, &hook, "not-the-secret", &msg)
        .await
        .expect_error(403, "bad_signature");
    meta_hook(&s, &hook, "wa-secret", &msg).await.expect(200);
    meta_hook(&s, &hook, "wa-secret", &msg).await.expect(200);
    let id = c.accept_offer().await;
    assert_eq!(c.messages(&id).await.len(), 1);
    let info = c
        .agent
        .get(&format!("/api/v1/interactions/{id}/messaging"))
        .await
        .expect(200);
    assert_eq!(info["window_applies"], true);
    assert_eq!(info["window_open"], true);
    assert!(info["window_until"].is_string());

    // media by id: GET /v21.0/{media-id} with the bearer, then the URL with the bearer
    let img = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550003000", "phone_number_id": "PN1"},
        "messages": [{"from": "15557654321", "id": "wamid.IN2", "timestamp": "1700000002", "type": "image",
                      "image": {"id": "MEDIA77", "mime_type": "image/jpeg", "sha256": "x", "caption": "the box"}}]}}]}]});
    meta_hook(&s, &hook, "wa-secret", &img).await.expect(200);
    let meta = fake.wait("/v21.0/MEDIA77", 1).await;
    assert_eq!(meta[0].header("authorization"), "Bearer wa-token");
    let dl = fake.wait("/media/wa-download", 1).await;
    assert_eq!(dl[0].header("authorization"), "Bearer wa-token");
    assert!(stored_media(&s).contains(&b"MEDIA-BYTES/media/wa-download".to_vec()));

    // a text reply, exactly as the Cloud API documents it
    let m = c.reply(&id, "¿En qué puedo ayudar?").await.expect(201);
    let sent = fake.wait("/v21.0/PN1/messages", 1).await;
    assert_eq!(sent[0].header("authorization"), "Bearer wa-token");
    assert_eq!(
        sent[0].json(),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15557654321",
               "type": "text", "text": {"preview_url": false, "body": "¿En qué puedo ayudar?"}})
    );
    let mid = m["id"].as_str().expect("id");
    c.wait_delivery(&id, mid, "sent").await;
    let n = fake.requests("").len();
    for st in ["delivered", "read"] {
        meta_hook(
            &s,
            &hook,
            "wa-secret",
            &whatsapp_status(&format!("wamid.OUT{n}"), st),
        )
        .await
        .expect(200);
        c.wait_delivery(&id, mid, st).await;
    }

    // Continue an SMS conversation of another customer on WhatsApp: that customer never wrote
    // on WhatsApp, so the window is closed: free text is refused, a template goes.
    let (sms, sms_hook) = c
        .account(
            "twilio",
            &fake.base,
            json!({"account_sid": "AC9", "from": "+15550009000"}),
            json!({"auth_token": TWILIO_TOKEN}),
        )
        .await;
    let _ = sms;
    twilio_hook(
        &s,
        &sms_hook,
        TWILIO_TOKEN,
        &[
            ("MessageSid", "SM-x"),
            ("From", "+15551112222"),
            ("Body", "text me on WhatsApp"),
        ],
    )
    .await
    .expect(200);
    let id2 = c.accept_offer().await;
    let wa_account = c
        .admin
        .get("/api/v1/channel-accounts")
        .await
        .expect(200)
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["provider"] == "whatsapp")
        .expect("wa")["id"]
        .clone();
    let cont = c
        .agent
        .post(
            &format!("/api/v1/interactions/{id2}/continue"),
            json!({"channel": "whatsapp", "account_id": wa_account}),
        )
        .await
        .expect(200);
    assert_eq!(cont["channel"], "whatsapp");
    assert_eq!(cont["window_open"], false);
    c.reply(&id2, "free text")
        .await
        .expect_error(409, "window_closed");
    c.agent
        .post(
            &format!("/api/v1/interactions/{id2}/template"),
            json!({"name": "order_update", "language": "en_US", "parameters": ["A-17"]}),
        )
        .await
        .expect(201);
    let sent = fake.wait("/v21.0/PN1/messages", 2).await;
    assert_eq!(
        sent[1].json(),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551112222", "type": "template",
               "template": {"name": "order_update", "language": {"code": "en_US"},
                            "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-17"}]}]}})
    );
}

#[tokio::test]
async fn telegram_secret_token_photo_and_send_message() {
    let dir = TempDir::new("msg-telegram");
    let s = Server::start(&dir.0);
    let fake = Fake::start().await;
    let c = Center::build(&s).await;
    let (_, hook) = c
        .account(
            "telegram",
            &fake.base,
            json!({}),
            json!({"bot_token": "123:ABC", "secret_token": "tg-secret"}),
        )
        .await;
    let update = json!({"update_id": 10001, "message": {"message_id": 7, "date": 1700000000,
        "from": {"id": 4242, "is_bot": false, "first_name": "Omid", "last_name": "K"},
        "chat": {"id": 4242, "type": "private", "first_name": "Omid"},
        "photo": [{"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                  {"file_id": "BIG", "file_unique_id": "b", "width": 900, "height": 900}],
        "caption": "سلام"}});
    let raw = update.to_string().into_bytes();
    post_hook(
        &s,
        &hook,
        "application/json",
        &[("X-Telegram-Bot-Api-Secret-Token", "wrong".into())],
        raw.clone(),
    )
    .await
    .expect_error(403, "bad_signature");
    for _ in 0..2 {
        post_hook(
            &s,
            &hook,
            "application/json",
            &[("X-Telegram-Bot-Api-Secret-Token", "tg-secret".into())],
            raw.clone(),
        )
        .await
        .expect(200);
    }
    let id = c.accept_offer().await;
    let msgs = c.messages(&id).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["text"], "سلام");
    assert_eq!(msgs[0]["name"], "Omid K");
    let gf = fake.wait("/bot123:ABC/getFile", 1).await;
    assert!(gf[0].path.ends_with("file_id=BIG"), "{}", gf[0].path);
    fake.wait("/file/bot123:ABC/photos/file_1.jpg", 1).await;
    assert!(stored_media(&s).contains(&b"PHOTO-BYTES".to_vec()));
    c.reply(&id, "خوش آمدید").await.expect(201);
    let sent = fake.wait("/bot123:ABC/sendMessage", 1).await;
    assert_eq!(
        sent[0].json(),
        json!({"chat_id": 4242, "text": "خوش آمدید"})
    );
}

fn meta_messaging(object: &str, event: Value) -> Value {
    json!({"object": object, "entry": [{"id": "PAGE1", "time": 1700000000000i64, "messaging": [event]}]})
}

#[tokio::test]
async fn messenger_and_instagram_messages_replies_and_read_receipts() {
    let dir = TempDir::new("msg-meta");
    let s = Server::start(&dir.0);
    let fake = Fake::start().await;
    let c = Center::build(&s).await;
    for (provider, object, user) in [
        ("messenger", "page", "PSID-1"),
        ("instagram", "instagram", "IGSID-1"),
    ] {
        let (_, hook) = c
            .account(provider, &fake.base, json!({"page_id": "PAGE1"}),
                     json!({"page_access_token": "page-token", "app_secret": "meta-secret", "verify_token": "v"}))
            .await;
        let msg = meta_messaging(
            object,
            json!({"sender": {"id": user}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000000000i64,
            "message": {"mid": format!("mid.{user}"), "text": "hello",
                        "attachments": [{"type": "image", "payload": {"url": format!("{}/media/{user}", fake.base)}}]}}),
        );
        meta_hook(&s, &hook, "wrong", &msg)
            .await
            .expect_error(403, "bad_signature");
        meta_hook(&s, &hook, "meta-secret", &msg).await.expect(200);
        meta_hook(&s, &hook, "meta-secret", &msg).await.expect(200);
        let id = c.accept_offer().await;
        assert_eq!(c.messages(&id).await.len(), 1, "{provider}");
        let it = c
            .agent
            .get(&format!("/api/v1/interactions/{id}"))
            .await
            .expect(200);
        assert_eq!(it["channel"], provider);
        fake.wait(&format!("/media/{user}"), 1).await;
        let m = c.reply(&id, "hi there").await.expect(201);
        let sent = fake
            .wait("/me/messages", if provider == "messenger" { 1 } else { 2 })
            .await;
        let r = sent.last().expect("sent");
        assert_eq!(r.path, "/v21.0/me/messages?access_token=page-token");
        assert_eq!(
            r.json(),
            json!({"recipient": {"id": user}, "messaging_type": "RESPONSE", "message": {"text": "hi there"}})
        );
        let mid = m["id"].as_str().expect("id");
        c.wait_delivery(&id, mid, "sent").await;
        // a read watermark far ahead marks everything sent before it as read
        let read = meta_messaging(
            object,
            json!({"sender": {"id": user}, "recipient": {"id": "PAGE1"}, "timestamp": 1,
            "read": {"watermark": 4_000_000_000_000i64}}),
        );
        meta_hook(&s, &hook, "meta-secret", &read).await.expect(200);
        c.wait_delivery(&id, mid, "read").await;
        c.agent
            .post(
                &format!("/api/v1/interactions/{id}/end"),
                json!({"disposition": "done"}),
            )
            .await
            .expect(200);
    }
}
