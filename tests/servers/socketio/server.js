// A real socket.io 4.x server for stampede's tests: a client joins the room
// of a channel by emitting `subscribe` with the channel's name; POST
// /pub/<channel> emits the body as a `message` event to that room (the
// body is stampede's envelope). pingInterval is short (1 s) so that
// Engine.IO pings happen during a test.
//
//   node server.js [port]     (0 or none: a free port; or env PORT)
//
// The same process also serves the raw transports stampede's built-in
// profile speaks, fed by the same publishes: `GET /sse/<channel>`
// (Server-Sent Events) and `GET /ws/<channel>` (one WebSocket text frame
// per event), so that scenarios/compare-socketio.toml can measure what
// Socket.IO's layers cost on top of them on one Node server.
//
// Prints `listening <port>` once ready. POST /control/disconnect makes the
// server disconnect every socket of the main namespace (Socket.IO `41`), so
// a test can count server-side disconnects; POST /control/binary emits a
// binary event (one attachment) to every socket. Stops on SIGTERM or when stdin
// closes.
"use strict";
const http = require("http");
const { Server } = require("socket.io");
const { WebSocketServer } = require("ws");

// channel -> Set of raw subscribers (an SSE response or a WebSocket)
const raw = new Map();
function rawSet(channel) {
  let set = raw.get(channel);
  if (!set) raw.set(channel, (set = new Set()));
  return set;
}
function publish(channel, text) {
  io.to(channel).emit("message", text);
  for (const sub of raw.get(channel) || []) sub(text);
}

const server = http.createServer((req, res) => {
  if (req.method === "POST" && req.url.startsWith("/pub/")) {
    const channel = decodeURIComponent(req.url.slice(5).split("?")[0]);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      publish(channel, Buffer.concat(chunks).toString("utf8"));
      res.writeHead(204).end();
    });
    return;
  }
  if (req.method === "POST" && req.url === "/control/binary") {
    // A binary event (`451-` and one attachment) to every socket.
    io.emit("blob", Buffer.from([1, 2, 3]), "text after the attachment");
    res.writeHead(204).end();
    return;
  }
  if (req.method === "POST" && req.url === "/control/disconnect") {
    io.disconnectSockets(true);
    res.writeHead(204).end();
    return;
  }
  if (req.method === "GET" && req.url.startsWith("/sse/")) {
    const set = rawSet(decodeURIComponent(req.url.slice(5).split("?")[0]));
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    res.write(": subscribed\n\n");
    const sub = (text) => res.write(`data: ${text}\n\n`);
    set.add(sub);
    req.on("close", () => set.delete(sub));
    return;
  }
  if (req.url.startsWith("/socket.io")) return; // engine.io answers these
  res.writeHead(404).end();
});

const io = new Server(server, {
  pingInterval: Number(process.env.PING_INTERVAL_MS || 1000),
  pingTimeout: Number(process.env.PING_TIMEOUT_MS || 2000),
  serveClient: false,
  cors: { origin: "*" },
});

const wss = new WebSocketServer({ noServer: true });
server.on("upgrade", (req, socket, head) => {
  if (!req.url.startsWith("/ws/")) return; // engine.io takes /socket.io/
  const set = rawSet(decodeURIComponent(req.url.slice(4).split("?")[0]));
  wss.handleUpgrade(req, socket, head, (ws) => {
    const sub = (text) => ws.send(text);
    set.add(sub);
    ws.on("close", () => set.delete(sub));
  });
});

io.on("connection", (socket) => {
  socket.on("subscribe", (channel, ack) => {
    socket.join(String(channel));
    if (typeof ack === "function") ack("ok");
  });
  // A publisher session may emit `publish` (channel, payload).
  socket.on("publish", (channel, payload, ack) => {
    publish(String(channel), String(payload));
    if (typeof ack === "function") ack("ok");
  });
});

const port = Number(process.argv[2] || process.env.PORT || 0);
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

function stop() {
  for (const c of wss.clients) c.terminate();
  io.close();
  server.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
