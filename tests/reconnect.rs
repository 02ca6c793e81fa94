//! Reconnect accounting: when the target drops every subscriber mid-run,
//! transports that resume (SSE with Last-Event-ID, NDJSON with a cursor)
//! lose nothing, and WebSocket, which cannot resume, loses what was
//! published during its gap — and the ledger says so.

mod support;

use std::time::Duration;

use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumable_transports_lose_nothing_websocket_counts_its_gap() {
    let target = InProcess::start().await;
    let mut p = plan(
        "name = \"reconnect\"\nduration = \"4s\"\nwarmup = \"500ms\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 100\n\
         [[groups]]\ntransport = \"sse\"\nclients = 10\nreconnect = { backoff = \"300ms\" }\n\
         [[groups]]\ntransport = \"ndjson\"\nclients = 10\nreconnect = { backoff = \"300ms\" }\n\
         [[groups]]\ntransport = \"websocket\"\nclients = 10\nreconnect = { backoff = \"300ms\" }\n",
    );
    target.aim(&mut p);
    let hub = target.hub.clone();
    let dropper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2000)).await;
        hub.drop_subscribers();
    });
    let dir = TempDir::new("reconnect");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    dropper.await.unwrap();
    target.stop().await;

    for g in ["sse", "ndjson", "websocket"] {
        let r = row(&out.rows, g);
        assert_eq!(r.reconnects, 10, "{g}: every client reconnected once");
        assert_eq!(
            r.expected.unwrap(),
            r.published.unwrap() * 10,
            "{g}: the window spans the gap"
        );
        assert_eq!(r.duplicated.unwrap(), 0, "{g}");
    }
    for g in ["sse", "ndjson"] {
        let r = row(&out.rows, g);
        assert_eq!(r.lost.unwrap(), 0, "{g} resumes with its cursor");
    }
    let ws = row(&out.rows, "websocket");
    // 300 ms of backoff at 100 events/s: about 30 events per client.
    assert!(
        ws.lost.unwrap() >= 10 * 15 && ws.lost.unwrap() <= 10 * 60,
        "websocket lost {}",
        ws.lost.unwrap()
    );
    assert_eq!(
        ws.delivered.unwrap() + ws.lost.unwrap(),
        ws.expected.unwrap()
    );
}
