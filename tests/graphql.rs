//! GraphQL subscriptions against a real server: the npm `graphql-ws`
//! library (protocol `graphql-transport-ws`) with `ws` and `graphql`, under
//! `tests/servers/graphql/` (one mutation that publishes, one subscription),
//! started on a free port and stopped after each test, through the
//! `graphql-ws` preset. Skipped with a message when node or the server's
//! `node_modules` are missing (fails instead under
//! `STAMPEDE_REQUIRE_GRAPHQL=1`, as in CI, where `.ci/run` installs them).

mod support;

use stampede::shutdown::Shutdown;
use support::node::NodeApp;
use support::*;

fn graphql_server(test: &str) -> Option<NodeApp> {
    NodeApp::start(test, "graphql", "graphql-ws", "STAMPEDE_REQUIRE_GRAPHQL")
}

fn scenario(server: &NodeApp, clients: u32, rate: u32, duration: &str) -> String {
    format!(
        "name = \"graphql\"\ntarget = \"{}\"\nprofile = \"graphql-ws\"\n\
         duration = \"{duration}\"\nwarmup = \"1s\"\nramp_up = \"1s\"\ndrain = \"1s\"\n\
         [publisher]\nrate = {rate}\npayload_bytes = 100\nchannels = 4\n\
         [[groups]]\ntransport = \"websocket\"\nclients = {clients}\n",
        server.url()
    )
}

async fn exact_run(clients: u32, rate: u32, duration: &str, tag: &str) {
    let Some(server) = graphql_server(tag) else {
        return;
    };
    let dir = TempDir::new(tag);
    let out = run_plan(
        plan(&scenario(&server, clients, rate, duration)),
        dir.path(),
        Shutdown::new(),
    )
    .await;
    assert_eq!(out.exit_code, 0, "{:?}", out.stop);
    let r = row(&out.rows, "websocket");
    eprintln!(
        "{tag}: {clients} subscribers, published {:?}, expected {:?}, delivered {:?}, lost {:?}, \
         duplicated {:?}, errors {}, control_messages {:?}, delivery p50 {:?} ms p99 {:?} ms, \
         subscribe p50 {:?} ms",
        r.published,
        r.expected,
        r.delivered,
        r.lost,
        r.duplicated,
        r.errors,
        r.control_messages,
        r.delivery_p50_ms,
        r.delivery_p99_ms,
        r.subscribe_p50_ms
    );
    assert!(r.expected.unwrap() > 0, "{r:?}");
    assert_eq!(r.delivered, r.expected, "{r:?}");
    assert_eq!(
        (r.lost, r.duplicated, r.errors),
        (Some(0), Some(0), 0),
        "{r:?}"
    );
    // connection_ack comes before the measured window; the pongs to the
    // preset's 10 s heartbeat come in it, one per client at least.
    assert!(r.control_messages.unwrap() >= u64::from(clients), "{r:?}");
    assert_eq!(r.other_messages, Some(0), "{r:?}");
    assert!(r.delivery_p50_ms.unwrap() < 20.0, "{r:?}");
    assert!(r.subscribe_p50_ms.is_some(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_subscriptions_deliver_everything() {
    exact_run(40, 20, "10s", "graphql-short").await;
}

/// The done-when: 200 subscribers, 20 events/s, 20 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 200 subscribers for 20 s (cargo test --test graphql -- --ignored)"]
async fn graphql_ws_200_subscribers_20_events_per_s_for_20_s() {
    exact_run(200, 20, "20s", "graphql-long").await;
}
