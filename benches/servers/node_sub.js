// A minimal Node.js subscriber for benches/floor.sh: N WebSocket (`ws`
// package) or SSE (`http`) connections, counting messages, no accounting.
//   node benches/servers/node_sub.js ws|sse HOST:PORT PATH CLIENTS SECONDS
// Prints one line of JSON like examples/floor.rs: subscribed, messages,
// cpu_s (process.cpuUsage, user + system), peak_rss_kib (maxRSS).
'use strict';
const http = require('http');
const path = require('path');
const WebSocket = require(path.join(__dirname, '../../tests/servers/graphql/node_modules/ws'));

const [kind, hostport, urlPath, clientsArg, secondsArg] = process.argv.slice(2);
const clients = Number(clientsArg);
const seconds = Number(secondsArg);
const [host, port] = hostport.split(':');
let messages = 0;
let subscribed = 0;
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

for (let i = 0; i < clients; i++) {
  const localAddress = `127.0.0.${1 + (i % 250)}`;
  if (kind === 'ws') {
    const ws = new WebSocket(`ws://${hostport}${urlPath}`, { localAddress, perMessageDeflate: false });
    ws.on('open', () => { subscribed++; });
    ws.on('message', () => { messages++; });
    ws.on('error', () => {});
  } else {
    const req = http.get({ host, port, path: urlPath, localAddress, agent,
                           headers: { Accept: 'text/event-stream' } }, (res) => {
      subscribed++;
      let last = 0;
      res.on('data', (chunk) => {
        for (let j = 0; j < chunk.length; j++) {
          const b = chunk[j];
          if (b === 10 && last === 10) messages++;
          last = b;
        }
      });
    });
    req.on('error', () => {});
  }
}

setTimeout(() => {
  const cpu = process.cpuUsage();
  const ru = process.resourceUsage();
  console.log(JSON.stringify({
    subscribed, messages,
    cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(3)),
    peak_rss_kib: ru.maxRSS,
  }));
  process.exit(0);
}, seconds * 1000);
