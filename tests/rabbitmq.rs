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
//!   publisher, and persistent sessions losing nothing through a
//!   reconnect storm.

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

/// STOMP to and from amq.topic, exact, with the passcode from the
/// environment.
async fn stomp_exact(broker: &RabbitMq, clients: u32, duration: &str) -> SummaryRow {
    stomp_run(broker, clients, duration, "1s", "rate = 20\nchannels = 4").await
}

async fn stomp_run(
    broker: &RabbitMq,
    clients: u32,
    duration: &str,
    heartbeat: &str,
    publisher: &str,
) -> SummaryRow {
    let text = scenario(
        &broker.stomp_url,
        "stomp",
        &format!(
            "[profile.stomp]\nurl = \"/ws\"\nlogin = \"guest\"\n\
             passcode = \"${{STAMPEDE_TEST_RABBITMQ_PASSCODE}}\"\n\
             destination = \"/exchange/amq.topic/{{channel}}\"\nheartbeat = \"{heartbeat}\"\n"
        ),
        &format!("[[groups]]\ntransport = \"stomp\"\nclients = {clients}\n"),
    )
    .replace("duration = \"4s\"", &format!("duration = \"{duration}\""))
    .replace(
        "rate = 20\npayload_bytes = 100\nchannels = 4",
        &format!("{publisher}\npayload_bytes = 100"),
    );
    let dir = TempDir::new("rabbitmq-stomp");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "stomp: {:?}\n{}", out.stop, broker.logs());
    let r = row(&out.rows, "stomp");
    exact(
        r,
        &format!("rabbitmq stomp {clients} (heart-beat {heartbeat})"),
    );
    r.clone()
}

/// MQTT 3.1.1 on web-mqtt at QoS 1, exact.
async fn mqtt_exact(broker: &RabbitMq, clients: u32, duration: &str) {
    let text = scenario(
        &broker.mqtt_url,
        "mqtt",
        "[profile.mqtt]\nurl = \"/ws\"\nqos = 1\nkeep_alive = \"1s\"\n\
         username = \"guest\"\npassword = \"${STAMPEDE_TEST_RABBITMQ_PASSCODE}\"\n",
        &format!("[[groups]]\ntransport = \"mqtt\"\nclients = {clients}\n"),
    )
    .replace("duration = \"4s\"", &format!("duration = \"{duration}\""));
    let dir = TempDir::new("rabbitmq-mqtt");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "mqtt: {:?}\n{}", out.stop, broker.logs());
    let r = row(&out.rows, "mqtt");
    exact(r, &format!("rabbitmq mqtt {clients}"));
    // CONNACK, SUBACK and PINGRESPs to the 1 s keep-alive.
    assert!(
        r.control_messages.unwrap() >= 3 * u64::from(clients),
        "mqtt: {r:?}"
    );
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

    stomp_exact(&broker, 40, "4s").await;
    // Heart-beats both ways: every second asked for (RabbitMQ counts
    // them in whole seconds), an event only every 4 s, so the broker sends
    // them between events (each a control message), and a client that did
    // not send its own would be dropped by the broker (an error).
    let r = stomp_run(&broker, 5, "6s", "1s", "rate = 0.25\nchannels = 1").await;
    assert!(
        r.control_messages.unwrap() >= 5 * 3,
        "heart-beats from the broker: {r:?}"
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

    mqtt_exact(&broker, 40, "4s").await;

    // MQTT persistent sessions through a reconnect storm: RabbitMQ keeps
    // each client's queue while it is away and delivers it on reconnect.
    let text = scenario(
        &broker.mqtt_url,
        "mqtt",
        "[profile.mqtt]\nurl = \"/ws\"\nqos = 1\nclean_session = false\n",
        "[storm]\nat = \"3s\"\n\
         [[groups]]\ntransport = \"mqtt\"\nclients = 20\n\
         reconnect = { backoff = \"1s\", jitter = 0.3 }\n",
    );
    let dir = TempDir::new("rabbitmq-mqtt-storm");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "mqtt storm: {:?}", out.stop);
    let r = row(&out.rows, "mqtt");
    eprintln!("rabbitmq mqtt storm: {r:?}");
    assert_eq!(r.storm_reconnected, Some(20), "{r:?}");
    assert_eq!(r.lost, Some(0), "{r:?}");
    assert_eq!(r.delivered, r.expected, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");

    stomp_room_members(&broker).await;
}

/// STOMP room members sending on their own session, each SEND with a
/// `receipt`: every other member of the room receives each message, and
/// each RECEIPT is a `publish_ack` sample.
async fn stomp_room_members(broker: &RabbitMq) {
    let text = scenario(
        &broker.stomp_url,
        "stomp",
        "[profile.stomp]\nurl = \"/ws\"\nlogin = \"guest\"\npasscode = \"guest\"\n\
         destination = \"/exchange/amq.topic/{channel}\"\n",
        "[[groups]]\ntransport = \"stomp\"\nclients = 12\npublish = { rate = 2, via = \"same\" }\n",
    )
    .replace(
        "rate = 20\npayload_bytes = 100",
        "rate = 0\npayload_bytes = 100",
    );
    let dir = TempDir::new("rabbitmq-stomp-rooms");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(
        out.exit_code,
        0,
        "stomp rooms: {:?}\n{}",
        out.stop,
        broker.logs()
    );
    let r = row(&out.rows, "stomp");
    exact(r, "rabbitmq stomp room members");
    // 12 members in 4 rooms of 3, 2 messages/s each over the 4 s window:
    // every message is expected at the 2 others.
    assert_eq!(r.expected, Some(2 * r.published.unwrap()), "{r:?}");
    assert!(r.published.unwrap() >= 12 * 7, "{r:?}");
    assert!(r.publishes_acked.unwrap() >= 12 * 7, "{r:?}");
    assert_eq!(r.publishes_failed, Some(0), "{r:?}");
    let (p50, p99) = (r.publish_ack_p50_ms.unwrap(), r.publish_ack_p99_ms.unwrap());
    assert!(p50 > 0.0 && p99 >= p50, "{r:?}");
}

/// The done-when on one node: 500 subscribers, 20 events/s, 30 s,
/// over STOMP and then over MQTT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 500 subscribers for 30 s, twice (cargo test --test rabbitmq -- --ignored)"]
async fn rabbitmq_500_subscribers_20_events_per_s_for_30_s() {
    let Some(broker) = RabbitMq::start("rabbitmq-500") else {
        return;
    };
    std::env::set_var("STAMPEDE_TEST_RABBITMQ_PASSCODE", "guest");
    let r = stomp_exact(&broker, 500, "30s").await;
    assert!(r.control_messages.unwrap() > 0, "{r:?}");
    mqtt_exact(&broker, 500, "30s").await;
}
