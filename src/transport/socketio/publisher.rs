//! A Socket.IO session for the publisher (`[profile.publish] method =
//! "socketio"`): Engine.IO over a WebSocket, connected to the main
//! namespace, then one `42<body>` emit per event. Pings are answered
//! between emits; the publisher must not be dropped for a missing pong.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::packet::{self, Engine, Kind, Packet};
use crate::fault::{ErrorKind, Fault};

/// The WebSocket path of a publisher session on `path` (`/socket.io/`).
pub fn publisher_path(path: &str) -> String {
    super::polling::target(path, "websocket", None)
}

/// Reads the open packet, connects to namespace `/` and waits for the
/// server's confirmation (answering pings meanwhile).
pub async fn publisher_handshake<S>(ws: &mut WebSocketStream<S>) -> Result<(), Fault>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut opened = false;
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => {
                return Err(Fault::new(
                    ErrorKind::Reset,
                    "the publisher's Socket.IO WebSocket ended during the handshake",
                ))
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(_)) => continue,
        };
        match Engine::parse(text.as_bytes())? {
            Engine::Open(_) if !opened => {
                opened = true;
                ws.send(Message::text(packet::connect("/", None))).await?;
            }
            Engine::Ping(d) => {
                ws.send(Message::text(format!("3{}", String::from_utf8_lossy(d))))
                    .await?;
            }
            Engine::Message(m) => {
                let p = Packet::parse(m)?;
                match p.kind {
                    Kind::Connect if p.namespace == "/" => return Ok(()),
                    Kind::ConnectError => {
                        return Err(Fault::new(
                            ErrorKind::Protocol,
                            format!(
                                "the server refused the publisher's namespace: {}",
                                packet::connect_error_message(p.data)
                            ),
                        ))
                    }
                    _ => {}
                }
            }
            Engine::Close => {
                return Err(Fault::new(
                    ErrorKind::Closed,
                    "the server closed the publisher's Engine.IO session",
                ))
            }
            _ => {}
        }
    }
}

/// Emits `args` (the event's JSON array) on namespace `/`, after answering
/// whatever pings arrived since the last emit.
pub async fn publisher_emit<S>(ws: &mut WebSocketStream<S>, args: &str) -> Result<(), Fault>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(msg) = ws.next().now_or_never() {
        match msg {
            None | Some(Ok(Message::Close(_))) => {
                return Err(Fault::new(
                    ErrorKind::Reset,
                    "the publisher's Socket.IO WebSocket closed",
                ))
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => match Engine::parse(t.as_bytes())? {
                Engine::Ping(d) => {
                    ws.feed(Message::text(format!("3{}", String::from_utf8_lossy(d))))
                        .await?;
                }
                Engine::Close => {
                    return Err(Fault::new(
                        ErrorKind::Closed,
                        "the server closed the publisher's Engine.IO session",
                    ))
                }
                _ => {}
            },
            Some(Ok(_)) => {}
        }
    }
    ws.send(Message::text(format!("42{args}"))).await?;
    Ok(())
}
