//! One HTTP/1.1 exchange on a fresh connection, for telemetry only (a push
//! every few seconds, a scrape a second): hyper's client over a plain TCP
//! stream, with a deadline. Not the measuring client of `transport/`; its
//! traffic is never counted as load.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// An `http://` endpoint, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`, for connecting and the `Host` header.
    pub authority: String,
    /// Path and query.
    pub path: String,
    /// The URL as given (for messages).
    pub url: String,
}

impl Endpoint {
    /// Parses `url`; only `http://` is supported (a TLS endpoint is reached
    /// through a local Prometheus agent or proxy).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "{url:?}: only http:// URLs are supported (put a local agent or proxy in front of an https:// endpoint)"
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("{url:?}: no host"))?
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        Ok(Endpoint {
            authority: format!("{host}:{port}"),
            path: uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_string()),
            url: url.to_string(),
        })
    }
}

/// Largest response body read (a node_exporter page is ~100 KB): a
/// misbehaving endpoint cannot fill memory.
pub const MAX_BODY: usize = 16 << 20;

/// A response: status and body.
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// Sends one request (a POST when `body` is given, else a GET) with
/// `headers`, within `timeout`; errors are one line of text.
pub async fn exchange(
    ep: &Endpoint,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Response, String> {
    let work = async {
        let stream = tokio::net::TcpStream::connect(&ep.authority)
            .await
            .map_err(|e| format!("connect {}: {e}", ep.authority))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(if body.is_some() { "POST" } else { "GET" })
            .uri(&ep.path)
            .header(http::header::HOST, &ep.authority)
            .header(
                http::header::USER_AGENT,
                concat!("stampede/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string());
        let out = match resp {
            Ok(resp) => {
                let status = resp.status().as_u16();
                http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                    .collect()
                    .await
                    .map(|b| Response {
                        status,
                        body: b.to_bytes(),
                    })
                    .map_err(|e| format!("reading the body: {e}"))
            }
            Err(e) => Err(e),
        };
        driver.abort();
        out
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs_f64()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_only() {
        let e = Endpoint::parse("http://127.0.0.1:9090/api/v1/write").unwrap();
        assert_eq!(e.authority, "127.0.0.1:9090");
        assert_eq!(e.path, "/api/v1/write");
        assert_eq!(Endpoint::parse("http://h/m?x=1").unwrap().authority, "h:80");
        assert!(Endpoint::parse("https://h/x")
            .unwrap_err()
            .contains("http://"));
        assert!(Endpoint::parse("not a url").is_err());
    }
}
