//! TLS: `https://` / `wss://` targets through rustls, against a TLS
//! terminator (certificate generated at test time with rcgen) in front of
//! the in-process reference server. Verified with `--ca-file`, refused
//! without it (counted as `tls` errors), accepted with `--insecure` (and
//! recorded).

mod support;

use std::path::Path;
use std::sync::Arc;

use stampede::fault::ErrorKind;
use stampede::plan::{self, Overrides, Plan};
use stampede::scenario::{self, Source};
use stampede::shutdown::Shutdown;
use support::*;
use tokio::net::{TcpListener, TcpStream};

/// A TLS terminator for `backend` on 127.0.0.1:0 with a fresh self-signed
/// certificate for 127.0.0.1; returns its https URL and the cert's PEM.
async fn tls_front(backend: String) -> (String, String, tokio::task::JoinHandle<()>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (url, cert.pem(), task)
}

const SCENARIO: &str =
    "name = \"tls\"\nduration = \"1s\"\ndrain = \"500ms\"\nmode = \"concurrent\"\n\
    [publisher]\nrate = 20\n\
    [[groups]]\ntransport = \"sse\"\nclients = 3\n\
    [[groups]]\ntransport = \"websocket\"\nclients = 3\n\
    [[groups]]\ntransport = \"poll\"\nclients = 3\ninterval = \"200ms\"\n";

fn tls_plan(url: &str, ca_file: Option<&Path>, insecure: bool) -> Result<Plan, String> {
    let src = Source {
        path: "tls.toml".into(),
        text: SCENARIO.into(),
        overridden: false,
    };
    let sc = scenario::parse(&src).map_err(|e| e.to_string())?;
    plan::build(
        &sc,
        &src,
        &Overrides {
            target: Some(url.to_string()),
            ca_file: ca_file.map(Path::to_path_buf),
            insecure,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_refused_and_insecure() {
    let target = InProcess::start().await;
    let (url, pem, front) = tls_front(target.url.trim_start_matches("http://").to_string()).await;
    let dir = TempDir::new("tls");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pem).unwrap();

    // Verified against --ca-file: everything delivered, handshakes timed.
    let out = run_plan(
        tls_plan(&url, Some(&ca), false).unwrap(),
        &dir.path().join("verified"),
        Shutdown::new(),
    )
    .await;
    for r in &out.rows {
        assert_eq!(r.errors, 0, "{}: {r:?}", r.group);
        assert!(r.delivered.unwrap() > 0, "{}", r.group);
        assert_eq!(r.lost, Some(0), "{}", r.group);
        assert!(r.tls_p50_ms.is_some(), "{}: TLS handshake time", r.group);
        assert!(r.connect_p50_ms.is_some(), "{}", r.group);
    }

    // The same certificate, not trusted: every session fails as `tls`.
    let out = run_plan(
        tls_plan(&url, None, false).unwrap(),
        &dir.path().join("refused"),
        Shutdown::new(),
    )
    .await;
    for r in &out.rows {
        assert!(r.errors_of(ErrorKind::Tls) > 0, "{}: {r:?}", r.group);
        assert_eq!(r.errors, r.errors_of(ErrorKind::Tls), "{}", r.group);
        assert_eq!(r.delivered, Some(0), "{}", r.group);
    }

    // --insecure: works, and run.json says so.
    let out = run_plan(
        tls_plan(&url, None, true).unwrap(),
        &dir.path().join("insecure"),
        Shutdown::new(),
    )
    .await;
    assert!(out
        .rows
        .iter()
        .all(|r| r.errors == 0 && r.delivered.unwrap() > 0));
    let info = std::fs::read_to_string(dir.path().join("insecure/run.json")).unwrap();
    assert!(info.contains("\"insecure\": true"), "{info}");
    assert!(info.contains("not verified"), "warning recorded");

    front.abort();
    target.stop().await;
}

#[test]
fn tls_options_need_a_tls_target_and_a_readable_ca() {
    assert!(tls_plan("http://127.0.0.1:1", None, true)
        .unwrap_err()
        .contains("https://"));
    let err = tls_plan(
        "https://127.0.0.1:1",
        Some(Path::new("/nonexistent/ca.pem")),
        false,
    )
    .unwrap_err();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}
