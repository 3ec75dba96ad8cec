// Reference protocol test server on the official Node `socket.io` 4.8 (and its `engine.io`).
//
// Owns: the same behaviour as our scripts/protocol-test-server (shared PROTOCOL.md, "The protocol test
// server"): Engine.IO echo at /engine.io/, Socket.IO at /socket.io/ with namespaces / and /custom, `auth`
// emitted on connect, `message` -> `message-back`, `message-with-ack` acked with the same arguments;
// pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000, connectTimeout 1000 ms.
// Must not know: anything of the benchmark driver or of our server.
//
// Usage: node bench/reference/protocol_node.mjs PORT
import { createServer } from "node:http";
import { Server as EngineServer } from "engine.io";
import { Server } from "socket.io";

const port = Number(process.argv[2]);
const options = { pingInterval: 300, pingTimeout: 200, maxHttpBufferSize: 1e6, cors: { origin: "*" } };
const httpServer = createServer();

const engine = new EngineServer(options);
engine.attach(httpServer, { path: "/engine.io/" });
engine.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});

const io = new Server(httpServer, { ...options, connectTimeout: 1000 });
for (const nsp of ["/", "/custom"]) {
  io.of(nsp).on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth ?? {});
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
  });
}

httpServer.listen(port, "127.0.0.1");
