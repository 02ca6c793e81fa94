// A real graphql-ws server (protocol graphql-transport-ws) for stampede's
// tests: one mutation that publishes, one subscription that receives.
//
//   node server.js [port]     (0 or none: a free port)
//
// Prints `listening <port>` once ready. POST /graphql runs queries and
// mutations (JSON body {query, variables}); WebSocket /graphql speaks
// graphql-transport-ws. Stops on SIGTERM or when stdin closes.
"use strict";
const http = require("http");
const { WebSocketServer } = require("ws");
const { useServer } = require("graphql-ws/lib/use/ws");
const { buildSchema, graphql } = require("graphql");

const schema = buildSchema(`
  type Event { id: ID!, text: String!, channel: String! }
  type Query { ok: Boolean }
  type Mutation { post(text: String!, channel: String = "default"): Event! }
  type Subscription { onEvent(channel: String = "default"): Event! }
`);

// channel -> set of queues (one per subscription)
const subscribers = new Map();
let nextId = 1;

function subscribe(channel) {
  const queue = [];
  let wake = null;
  let done = false;
  const set = subscribers.get(channel) || new Set();
  subscribers.set(channel, set);
  const sub = {
    push(v) {
      if (wake) { const w = wake; wake = null; w({ value: v, done: false }); }
      else queue.push(v);
    },
  };
  set.add(sub);
  const end = () => {
    done = true;
    set.delete(sub);
    if (wake) { const w = wake; wake = null; w({ value: undefined, done: true }); }
    return Promise.resolve({ value: undefined, done: true });
  };
  return {
    [Symbol.asyncIterator]() { return this; },
    next() {
      if (queue.length) return Promise.resolve({ value: queue.shift(), done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((r) => { wake = r; });
    },
    return: end,
    throw: end,
  };
}

const roots = {
  ok: () => true,
  post: ({ text, channel }) => {
    const ev = { id: String(nextId++), text, channel };
    for (const s of subscribers.get(channel) || []) s.push({ onEvent: ev });
    return ev;
  },
  onEvent: ({ channel }) => subscribe(channel),
};

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || !req.url.startsWith("/graphql")) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (e) {
      res.writeHead(400, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ errors: [{ message: "bad JSON" }] }));
      return;
    }
    const result = await graphql({
      schema,
      source: body.query,
      rootValue: roots,
      variableValues: body.variables,
    });
    res.writeHead(result.errors ? 400 : 200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(result));
  });
});

const wss = new WebSocketServer({ server, path: "/graphql" });
useServer(
  {
    schema,
    roots: { query: roots, mutation: roots, subscription: roots },
  },
  wss,
);

server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

function stop() {
  for (const c of wss.clients) c.terminate();
  wss.close();
  server.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
