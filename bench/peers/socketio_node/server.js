// Node Socket.IO peer for bench/fanout.py and bench/idle_rss.py: the same room broadcast as
// liveclass's chat, over Socket.IO 4.8 (Engine.IO v4 / Socket.IO v5 protocol).
//
//   node server.js PORT
//
// Binds 127.0.0.1 only (io.listen ignores the host, so we make the http.Server ourselves).
// A client connects with auth {room, identity, role}; it joins that room at once. A "chat" event
// from any client (payload: the text) is stamped like a liveclass chat.message (id, ts, from, name,
// role, text, thread) and broadcast to the whole room with io.to(room).emit, sender included,
// then acknowledged when the client asked for an ack. Prints "ready PORT" once listening;
// exits on SIGTERM/SIGINT or when its stdin closes (the harness died).
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 64 * 1024,
});

let seq = 0;
io.on("connection", (socket) => {
  const auth = socket.handshake.auth || {};
  const room = String(auth.room || "class");
  const identity = String(auth.identity || socket.id);
  const role = String(auth.role || "student");
  socket.join(room);
  socket.on("chat", (text, ack) => {
    seq += 1;
    io.to(room).emit("chat", {
      id: seq,
      ts: Date.now(),
      from: identity,
      name: identity,
      role: role,
      text: String(text),
      thread: null,
    });
    if (typeof ack === "function") ack(seq);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(`ready ${httpServer.address().port}\n`);
});

function stop() {
  io.close();
  httpServer.close();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
