"""A pub/sub peer for benches/ws-deflate.sh (stdlib only): POST /pub/{ch}
fans the body out to the WebSocket subscribers of /ws/{ch}. permessage-deflate
is agreed when the client offers it (context takeover, level 6, as Python's
websockets and Node's ws do by default); every message is then compressed.

The envelope's dot padding would compress about 50x, which no real feed
does: the padding is replaced by JSON-like text with random numbers of the
same length (the envelope's head stays, so deliveries still count).
Prints its port on stdout. Usage: python3 ws_deflate_peer.py [PORT]"""
import asyncio, base64, hashlib, random, struct, sys, zlib
from collections import defaultdict

subs = defaultdict(set)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

def realistic(body):
    head, _, pad = body.partition(b"..")
    if not pad:
        return body
    n = len(body) - len(head)
    out = []
    while sum(map(len, out)) < n:
        out.append('{"sym":"%s","bid":%.4f,"ask":%.4f,"vol":%d},' % (
            random.choice(("ACME", "INIT", "GLOB", "UMBR", "WAYN")),
            random.uniform(10, 500), random.uniform(10, 500), random.randrange(1, 10**6)))
    return head + "".join(out).encode()[:n]

def frame(op, p, rsv1=False):
    b0 = 0x80 | op | (0x40 if rsv1 else 0)
    n = len(p)
    if n < 126:
        return bytes([b0, n]) + p
    if n < 65536:
        return bytes([b0, 126]) + struct.pack("!H", n) + p
    return bytes([b0, 127]) + struct.pack("!Q", n) + p

async def read_req(r):
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
    body = await r.readexactly(int(hdrs.get("content-length", 0) or 0))
    return method, path, hdrs, body

async def client_frames(r, w):
    """Reads the client's frames until its close, which is answered."""
    while True:
        b0, b1 = await r.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await r.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await r.readexactly(8))[0]
        mask = await r.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
        p = bytes(x ^ mask[i % 4] for i, x in enumerate(await r.readexactly(n)))
        if b0 & 0x0F == 8:
            w.write(frame(8, p[:2]))
            await w.drain()
            return
        if b0 & 0x0F == 9:
            w.write(frame(10, p))

async def handle(r, w):
    m, path, hd, body = await read_req(r)
    while m == "POST":
        ch = path.rsplit("/", 1)[-1]
        msg = realistic(body)
        for q in list(subs[ch]):
            q.put_nowait(msg)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await w.drain()
        m, path, hd, body = await read_req(r)
    ch = path.rsplit("/", 1)[-1]
    acc = base64.b64encode(hashlib.sha1(hd["sec-websocket-key"].encode() + GUID).digest())
    pmd = "permessage-deflate" in hd.get("sec-websocket-extensions", "")
    w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + acc +
            (b"\r\nSec-WebSocket-Extensions: permessage-deflate" if pmd else b"") + b"\r\n\r\n")
    q = asyncio.Queue()
    subs[ch].add(q)
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    reader = asyncio.ensure_future(client_frames(r, w))
    try:
        while not reader.done():
            get = asyncio.ensure_future(q.get())
            await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not get.done():
                get.cancel()
                break
            msg = get.result()
            if pmd:
                w.write(frame(1, (z.compress(msg) + z.flush(zlib.Z_SYNC_FLUSH))[:-4], True))
            else:
                w.write(frame(1, msg))
            await w.drain()
    finally:
        subs[ch].discard(q)
        reader.cancel()

async def quiet(r, w):
    try:
        await handle(r, w)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        w.close()

async def main():
    srv = await asyncio.start_server(quiet, "127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                                     backlog=1024)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()

asyncio.run(main())
