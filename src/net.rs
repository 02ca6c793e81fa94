//! Sockets as the harness opens them: timed TCP connects and a stream
//! wrapper that counts bytes at the socket, below HTTP and WebSocket framing,
//! so `bytes_sent`/`bytes_received` are wire bytes, not payload estimates.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::fault::{ErrorKind, Fault};

/// Bytes moved by one client's connections. Only that client's task and its
/// connection driver touch it, so `Relaxed` adds stay uncontended.
#[derive(Debug, Default)]
pub struct IoCounters {
    sent: AtomicU64,
    received: AtomicU64,
}

impl IoCounters {
    /// (sent, received) so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }

    /// Takes (sent, received) so far, leaving zero: a shared connection's
    /// bytes handed on to the streams it carried.
    pub fn take(&self) -> (u64, u64) {
        (
            self.sent.swap(0, Ordering::Relaxed),
            self.received.swap(0, Ordering::Relaxed),
        )
    }

    /// Adds bytes counted elsewhere.
    pub fn add(&self, sent: u64, received: u64) {
        self.sent.fetch_add(sent, Ordering::Relaxed);
        self.received.fetch_add(received, Ordering::Relaxed);
    }
}

/// A stream that adds every byte read or written to an `IoCounters`.
#[derive(Debug)]
pub struct Counting<S> {
    inner: S,
    counters: Arc<IoCounters>,
}

impl<S> Counting<S> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: S, counters: Arc<IoCounters>) -> Self {
        Self { inner, counters }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.counters
                .received
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &res {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Loopback source addresses client connections rotate over: each has its
/// own ~28,000 ephemeral ports towards one target port.
const LOOPBACK_SOURCES: u8 = 250;

/// Where client connections come from: the kernel's choice, or a rotation
/// over local addresses (`--local-addr`, or 127.0.0.1–127.0.0.250 towards
/// a loopback target), so one target port is not limited to one source
/// address's ephemeral ports.
#[derive(Debug, Default)]
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    /// The sources for connections to `target`: `local` when given, the
    /// loopback rotation for an IPv4 loopback target, else the kernel's.
    pub fn for_target(target: SocketAddr, local: &[IpAddr]) -> Sources {
        let addrs = if !local.is_empty() {
            local.to_vec()
        } else if matches!(target.ip(), IpAddr::V4(v4) if v4.is_loopback()) {
            (1..=LOOPBACK_SOURCES)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
                .collect()
        } else {
            Vec::new()
        };
        Sources {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    /// How many source addresses there are (0: the kernel picks).
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// True when the kernel picks the source address.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    fn pick(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.addrs[i % self.addrs.len()])
    }
}

/// Binds `socket` to `ip` with the port left to `connect` time
/// (`IP_BIND_ADDRESS_NO_PORT`), so the port need only be unique per
/// destination, not per machine.
fn bind_source(socket: &TcpSocket, ip: IpAddr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if ip.is_ipv4() {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket fd, and a c_int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    socket.bind(SocketAddr::new(ip, 0))
}

/// The message for running out of local addresses or ports, instead of a
/// bare "Cannot assign requested address".
fn exhausted(addr: SocketAddr, from: Option<IpAddr>, e: &io::Error) -> Fault {
    let from = from.map_or(String::new(), |ip| format!(" from {ip}"));
    Fault::new(
        ErrorKind::Other,
        format!(
            "connect to {addr}{from}: no free local port or address ({e}); spread connections over more source addresses with --local-addr A,B,... or fewer clients per process"
        ),
    )
}

/// Opens a TCP connection with `TCP_NODELAY` from one of `sources`,
/// returning it and the time the connect took.
pub async fn connect_from(
    addr: SocketAddr,
    timeout: Duration,
    sources: &Sources,
) -> Result<(TcpStream, Duration), Fault> {
    let started = Instant::now();
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    let from = sources.pick().filter(|ip| ip.is_ipv4() == addr.is_ipv4());
    if let Some(ip) = from {
        bind_source(&socket, ip).map_err(|e| match e.kind() {
            io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse => exhausted(addr, from, &e),
            _ => Fault::new(ErrorKind::of_io(&e), format!("bind to {ip}: {e}")),
        })?;
    }
    let stream = tokio::time::timeout(timeout, socket.connect(addr))
        .await
        .map_err(|_| Fault::new(ErrorKind::Timeout, format!("connect to {addr} timed out")))?
        .map_err(|e| match e.kind() {
            io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse => exhausted(addr, from, &e),
            _ => Fault::new(ErrorKind::of_io(&e), format!("connect to {addr}: {e}")),
        })?;
    let took = started.elapsed();
    stream.set_nodelay(true)?;
    Ok((stream, took))
}

/// A client's TLS setup, built once per run and shared by every session:
/// the verifier (system roots, `--ca-file`, or none with `--insecure`) and
/// the name the certificate must carry.
#[derive(Clone)]
pub struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS to `host`, verifying against the system roots plus the PEM
    /// certificates of `ca_file`, or verifying nothing when `insecure`.
    pub fn new(
        host: &str,
        ca_file: Option<&std::path::Path>,
        insecure: bool,
    ) -> Result<Tls, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            // Unreadable system certificates are skipped, as browsers do; an
            // empty store only matters if no --ca-file is given either.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if let Some(path) = ca_file {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("--ca-file {}: {e}", path.display()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!(
                        "--ca-file {}: no PEM certificate in it",
                        path.display()
                    ));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// Runs the TLS handshake over `io` within `timeout`; failures are `tls`
    /// faults (a timeout is a `timeout`).
    pub async fn handshake(
        &self,
        io: Counting<TcpStream>,
        timeout: Duration,
    ) -> Result<(Stream, Duration), Fault> {
        let started = Instant::now();
        let tls = tokio::time::timeout(
            timeout,
            self.connector.connect(self.server_name.clone(), io),
        )
        .await
        .map_err(|_| Fault::timeout("TLS handshake"))?
        .map_err(|e| Fault::new(ErrorKind::Tls, format!("TLS handshake: {e}")))?;
        Ok((Stream::Tls(Box::new(tls)), started.elapsed()))
    }
}

/// `--insecure`: accepts any certificate (signatures are still checked, so
/// the handshake itself is real).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A session's connection: plain TCP or TLS, bytes counted at the socket
/// either way.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(Counting<TcpStream>),
    /// TLS over the counted TCP stream.
    Tls(Box<tokio_rustls::client::TlsStream<Counting<TcpStream>>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens a TCP connection with `TCP_NODELAY` from the kernel's choice of
/// source, returning it and the time the connect took.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<(TcpStream, Duration), Fault> {
    connect_from(addr, timeout, &Sources::default()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_connections_rotate_over_source_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let sources = Sources::for_target(target, &[]);
        assert_eq!(sources.len(), LOOPBACK_SOURCES as usize);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (_conn, _) = connect_from(target, Duration::from_secs(2), &sources)
                .await
                .unwrap();
            let (_, peer) = listener.accept().await.unwrap();
            seen.push(peer.ip());
        }
        let expect: Vec<IpAddr> = (1..=3)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        assert_eq!(seen, expect);
        // Given addresses replace the rotation; other targets get the kernel's.
        let given = Sources::for_target(target, &[IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))]);
        assert_eq!(given.len(), 1);
        assert!(Sources::for_target("10.0.0.1:80".parse().unwrap(), &[]).is_empty());
    }

    #[tokio::test]
    async fn an_unusable_source_address_is_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        // Not an address of this machine.
        let sources = Sources::for_target(target, &[IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]);
        let err = connect_from(target, Duration::from_secs(2), &sources)
            .await
            .unwrap_err();
        assert!(err.detail.contains("--local-addr"), "{}", err.detail);
    }
}
