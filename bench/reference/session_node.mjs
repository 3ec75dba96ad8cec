// Reference session server on the official Node `socket.io` 4.8.
//
// Owns: the benchmark's session workload, done the plain socket.io way, to compare our server with: clients
// connect with query `conversation_id` and `latest_event_id`; each connection joins the room of its
// conversation and first receives, as `oh_event`, every stored event with id > latest_event_id;
// `oh_user_action` (a JSON object) gets the next per-conversation id (from 0), is kept in memory, is emitted
// to the room as `oh_event` (the payload as sent plus id, source, timestamp) and acked with {"id": N}.
// Must not know: the benchmark driver, our server. No persistence and no passivation.
//
// Usage: node bench/reference/session_node.mjs PORT
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2]);
const history = new Map();
const httpServer = createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });

io.use((socket, next) => {
  const conversation = socket.handshake.query.conversation_id;
  const latest = Number(socket.handshake.query.latest_event_id ?? -1);
  if (typeof conversation !== "string" || conversation === "") return next(new Error("conversation_id is required"));
  if (!Number.isInteger(latest)) return next(new Error("latest_event_id must be an integer"));
  socket.data.conversation = conversation;
  socket.data.latest = latest;
  next();
});

io.on("connection", (socket) => {
  const conversation = socket.data.conversation;
  if (!history.has(conversation)) history.set(conversation, []);
  const events = history.get(conversation);
  socket.join(conversation);
  for (const event of events.slice(Math.max(socket.data.latest + 1, 0))) socket.emit("oh_event", event);
  socket.on("oh_user_action", (data, ack) => {
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      if (typeof ack === "function") ack({ error: "oh_user_action needs a JSON object" });
      return;
    }
    const event = { ...data, id: events.length, source: "user", timestamp: new Date().toISOString() };
    events.push(event);
    io.to(conversation).emit("oh_event", event);
    if (typeof ack === "function") ack({ id: event.id });
  });
});

httpServer.listen({ port, host: "127.0.0.1", backlog: 4096 });
