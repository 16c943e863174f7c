// bench/stream/node_peer.mjs: an independent WebSocket peer for bench/stream/run, written
// with Node's `ws` package, so that pirec's stream path is compared with another
// implementation of the same protocol and not only with a raw TCP copy.
//
//   node node_peer.mjs server OUTFILE
//       listens on 127.0.0.1 (port 0), prints "listening PORT", writes the payload of
//       every binary message to OUTFILE (one synchronous write per message, no buffering
//       of its own) and exits after the first connection closes.
//   node node_peer.mjs client PORT INFILE MESSAGE_BYTES [FRAGMENTS]
//       reads INFILE MESSAGE_BYTES at a time and sends each read as one binary message,
//       masked as the ws client masks by default (a random key per frame), optionally
//       split into FRAGMENTS frames (pirec sends at least two); then closes with 1000.
//
// Both print one JSON line on stdout at the end: messages, bytes, message size, CPU
// seconds (process.cpuUsage) and whether ws found its optional native `bufferutil`
// (without it, ws masks in JavaScript). The module is found through NODE_PATH.
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { WebSocket, WebSocketServer } = require("ws");

function hasBufferutil() {
  try {
    require.resolve("bufferutil");
    return !process.env.WS_NO_BUFFER_UTIL;
  } catch {
    return false;
  }
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function report(obj) {
  process.stdout.write(JSON.stringify({ ...obj, cpu_s: cpuSeconds(),
                                        bufferutil: hasBufferutil() }) + "\n");
}

function server(outfile) {
  const fd = fs.openSync(outfile, "w");
  let messages = 0, bytes = 0, largest = 0;
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false,
                                    maxPayload: 1 << 30 });
  wss.on("listening", () => process.stdout.write(`listening ${wss.address().port}\n`));
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => {
      if (!isBinary)
        return;
      for (let off = 0; off < data.length; )
        off += fs.writeSync(fd, data, off);
      messages++;
      bytes += data.length;
      if (data.length > largest)
        largest = data.length;
    });
    ws.on("close", () => {
      fs.closeSync(fd);
      report({ side: "server", messages, bytes, message_bytes: largest });
      wss.close();
    });
  });
}

// Keeps at most this many bytes queued in ws before waiting for the socket (backpressure).
const HIGH_WATER = 4 << 20;

async function client(port, infile, size, fragments) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/bench.bin`, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const fd = fs.openSync(infile, "r");
  let messages = 0, bytes = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(size);
    const n = fs.readSync(fd, buf, 0, size, null);
    if (n === 0)
      break;
    const data = n < size ? buf.subarray(0, n) : buf;
    const step = Math.ceil(n / fragments);
    // Backpressure: when ws holds too much, this message's last frame is awaited.
    const wait = ws.bufferedAmount > HIGH_WATER;
    let sent = null;
    for (let off = 0; off < n; off += step) {
      const last = off + step >= n;
      const part = data.subarray(off, Math.min(n, off + step));
      if (last && wait)
        sent = new Promise((resolve, reject) =>
          ws.send(part, { binary: true, fin: true }, (err) => (err ? reject(err) : resolve())));
      else
        ws.send(part, { binary: true, fin: last });
    }
    messages++;
    bytes += n;
    if (sent)
      await sent;
  }
  fs.closeSync(fd);
  await new Promise((resolve) => {
    ws.once("close", resolve);
    ws.close(1000);
  });
  report({ side: "client", messages, bytes, message_bytes: size, fragments });
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "server" && args.length === 1) {
  server(args[0]);
} else if (mode === "client" && (args.length === 3 || args.length === 4)) {
  client(Number(args[0]), args[1], Number(args[2]), Number(args[3] || 1)).catch((e) => {
    process.stderr.write(`node_peer client: ${e.message}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write("usage: node_peer.mjs server OUTFILE | client PORT INFILE MESSAGE_BYTES " +
                       "[FRAGMENTS]\n");
  process.exit(2);
}
