// A real socket.io 4.x server for stampede's tests: a client joins the room
// of a channel by emitting `subscribe` with the channel's name; POST
// /pub/<channel> emits the body as a `message` event to that room (the
// body is stampede's envelope). pingInterval is short (1 s) so that
// Engine.IO pings happen during a test.
//
//   node server.js [port]     (0 or none: a free port; or env PORT)
//
// Prints `listening <port>` once ready. POST /control/disconnect makes the
// server disconnect every socket of the main namespace (Socket.IO `41`), so
// a test can count server-side disconnects. Stops on SIGTERM or when stdin
// closes.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const server = http.createServer((req, res) => {
  if (req.method === "POST" && req.url.startsWith("/pub/")) {
    const channel = decodeURIComponent(req.url.slice(5).split("?")[0]);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      io.to(channel).emit("message", Buffer.concat(chunks).toString("utf8"));
      res.writeHead(204).end();
    });
    return;
  }
  if (req.method === "POST" && req.url === "/control/disconnect") {
    io.disconnectSockets(true);
    res.writeHead(204).end();
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

io.on("connection", (socket) => {
  socket.on("subscribe", (channel, ack) => {
    socket.join(String(channel));
    if (typeof ack === "function") ack("ok");
  });
  // A publisher session may emit `publish` (channel, payload).
  socket.on("publish", (channel, payload, ack) => {
    io.to(String(channel)).emit("message", payload);
    if (typeof ack === "function") ack("ok");
  });
});

const port = Number(process.argv[2] || process.env.PORT || 0);
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

function stop() {
  io.close();
  server.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
