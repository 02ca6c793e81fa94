"""SSE pub/sub for benches/compression.sh: POST /pub/{ch} fans the body out;
GET /sse/{ch} streams it, gzip-compressed and flushed per event when the
request's Accept-Encoding offers gzip (as nginx's gzip or compression
middleware does), plain otherwise. Stdlib only; prints its port."""
import asyncio, sys, zlib

subs = set()

async def read_req(r):
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
    body = await r.readexactly(int(hdrs.get("content-length", 0) or 0))
    return method, path, hdrs, body

async def handle(r, w):
    try:
        while True:
            method, path, hdrs, body = await read_req(r)
            if method == "POST":
                for q in list(subs):
                    q.put_nowait(body)
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await w.drain()
                continue
            gz = "gzip" in hdrs.get("accept-encoding", "")
            q = asyncio.Queue()
            subs.add(q)
            z = zlib.compressobj(6, zlib.DEFLATED, 31) if gz else None
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    + (b"Content-Encoding: gzip\r\n" if gz else b"") + b"\r\n")
            try:
                while True:
                    ev = b"data: " + await q.get() + b"\n\n"
                    w.write(z.compress(ev) + z.flush(zlib.Z_SYNC_FLUSH) if z else ev)
                    await w.drain()
            finally:
                subs.discard(q)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        w.close()

async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()

asyncio.run(main())
