//! STOMP and MQTT over WebSocket against a real RabbitMQ (Debian
//! `rabbitmq-server`, plugins `rabbitmq_web_stomp` and `rabbitmq_web_mqtt`):
//! one private node for this whole binary, as a node takes seconds to
//! start (see `support::brokers`), so the checks run in sequence in one
//! test:
//! - STOMP 1.2: exact accounting with a STOMP publisher (SEND with
//!   receipts), heart-beats both ways counted as control messages, the
//!   passcode taken from the environment;
//! - STOMP: a SUBSCRIBE the broker answers with ERROR (a destination
//!   type it does not know) is a `protocol` error whose text is the
//!   broker's `message` header. (A SUBSCRIBE or SEND to a missing
//!   exchange is not usable here: web-stomp 3.10 then closes the WebSocket
//!   with 1000 "STOMP died" without sending its ERROR frame, which counts
//!   as `closed` before the subscription was confirmed.)
//! - MQTT 3.1.1 at QoS 1 on web-mqtt: exact accounting with an MQTT
//!   publisher.

mod support;

use stampede::fault::ErrorKind;
use stampede::metrics::summary::SummaryRow;
use stampede::shutdown::Shutdown;
use support::brokers::RabbitMq;
use support::*;

fn scenario(url: &str, publish: &str, section: &str, groups: &str) -> String {
    format!(
        "name = \"rabbitmq\"\ntarget = \"{url}\"\nduration = \"4s\"\nwarmup = \"1s\"\n\
         ramp_up = \"1s\"\ndrain = \"1s\"\n\
         [publisher]\nrate = 20\npayload_bytes = 100\nchannels = 4\n\
         [profile]\nname = \"rabbitmq\"\n\
         [profile.publish]\nmethod = \"{publish}\"\nurl = \"/ws\"\n\
         {section}\n{groups}"
    )
}

fn exact(r: &SummaryRow, tag: &str) {
    eprintln!(
        "{tag}: published {:?}, expected {:?}, delivered {:?}, lost {:?}, duplicated {:?}, \
         errors {}, control {:?}, other {:?}, delivery p50 {:?} ms p99 {:?} ms, subscribe p50 {:?} ms",
        r.published,
        r.expected,
        r.delivered,
        r.lost,
        r.duplicated,
        r.errors,
        r.control_messages,
        r.other_messages,
        r.delivery_p50_ms,
        r.delivery_p99_ms,
        r.subscribe_p50_ms
    );
    assert!(r.expected.unwrap() > 0, "{tag}: {r:?}");
    assert_eq!(r.delivered, r.expected, "{tag}: {r:?}");
    assert_eq!(
        (r.lost, r.duplicated, r.errors),
        (Some(0), Some(0), 0),
        "{tag}: {r:?}"
    );
    assert_eq!(r.other_messages, Some(0), "{tag}: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_and_mqtt_on_one_rabbitmq_node() {
    let tag = "rabbitmq";
    let Some(broker) = RabbitMq::start(tag) else {
        return;
    };
    eprintln!("rabbitmq: node up in {:.1} s", broker.startup.as_secs_f64());
    // The only test in this binary: no other thread reads the environment.
    std::env::set_var("STAMPEDE_TEST_RABBITMQ_PASSCODE", "guest");

    // STOMP, exact.
    let clients: u32 = 40;
    let text = scenario(
        &broker.stomp_url,
        "stomp",
        "[profile.stomp]\nurl = \"/ws\"\nlogin = \"guest\"\n\
         passcode = \"${STAMPEDE_TEST_RABBITMQ_PASSCODE}\"\n\
         destination = \"/exchange/amq.topic/{channel}\"\nheartbeat = \"1s\"\n",
        &format!("[[groups]]\ntransport = \"stomp\"\nclients = {clients}\n"),
    );
    let dir = TempDir::new("rabbitmq-stomp");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "stomp: {:?}\n{}", out.stop, broker.logs());
    let r = row(&out.rows, "stomp");
    exact(r, "stomp");
    // CONNECTED and RECEIPT per client, then the broker's heart-beats
    // (every second over a 5 s session).
    assert!(
        r.control_messages.unwrap() >= 4 * u64::from(clients),
        "stomp: {r:?}"
    );

    // STOMP, a SUBSCRIBE the broker refuses.
    let text = scenario(
        &broker.stomp_url,
        "stomp",
        "[profile.stomp]\nurl = \"/ws\"\nlogin = \"guest\"\npasscode = \"guest\"\n\
         destination = \"/bogus/{channel}\"\n",
        "[[groups]]\ntransport = \"stomp\"\nclients = 2\n\
         reconnect = { max_attempts = 1000, backoff = \"500ms\" }\n",
    );
    let dir = TempDir::new("rabbitmq-stomp-error");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    let r = row(&out.rows, "stomp");
    let run_json = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
    eprintln!("stomp ERROR: {r:?}");
    assert!(r.errors_of(ErrorKind::Protocol) > 0, "{r:?}: {run_json}");
    for other in ErrorKind::ALL
        .into_iter()
        .filter(|k| *k != ErrorKind::Protocol)
    {
        assert_eq!(
            r.errors_of(other),
            0,
            "{} in {r:?}: {run_json}",
            other.label()
        );
    }
    assert!(
        run_json.contains("the server sent ERROR: Unknown destination"),
        "the broker's message header is the error text: {run_json}"
    );

    // MQTT on web-mqtt, exact at QoS 1.
    let text = scenario(
        &broker.mqtt_url,
        "mqtt",
        "[profile.mqtt]\nurl = \"/ws\"\nqos = 1\nkeep_alive = \"1s\"\n\
         username = \"guest\"\npassword = \"${STAMPEDE_TEST_RABBITMQ_PASSCODE}\"\n",
        &format!("[[groups]]\ntransport = \"mqtt\"\nclients = {clients}\n"),
    );
    let dir = TempDir::new("rabbitmq-mqtt");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "mqtt: {:?}\n{}", out.stop, broker.logs());
    let r = row(&out.rows, "mqtt");
    exact(r, "rabbitmq mqtt");
    assert!(
        r.control_messages.unwrap() >= 3 * u64::from(clients),
        "mqtt: {r:?}"
    );
}
