// One run over the interactive WebSocket: the connection opens when the run
// starts and closes after its `exit`. Text frames are JSON control messages,
// binary frames raw terminal bytes (docs/protocol.md).

/** `http(s)://host/base/` → `ws(s)://host/base/api/v1/ws`. */
export function socketUrl(server) {
  const url = new URL('api/v1/ws', server);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/**
 * Start `request` (a `run` message without `type`) on `server`. Handlers:
 * - `onMessage(msg)`: every control message (`started`, `stage`, `exit`, `error`…);
 * - `onOutput(bytes)`: terminal output as a Uint8Array;
 * - `onClose({opened, code, exited})`: the socket is closed (by us after `exit`, or not).
 * Returns `{sendBytes, send, close}`; sends are dropped once the socket is not open.
 */
export function startRun(server, request, { onMessage, onOutput, onClose }) {
  const socket = new WebSocket(socketUrl(server));
  socket.binaryType = 'arraybuffer';
  let opened = false;
  let exited = false;
  const send = (msg) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
  };

  socket.addEventListener('open', () => {
    opened = true;
  });
  socket.addEventListener('message', (event) => {
    if (typeof event.data !== 'string') {
      onOutput(new Uint8Array(event.data));
      return;
    }
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return; // the contract says text frames are JSON; ignore anything else
    }
    if (!msg || typeof msg.type !== 'string') return;
    // `hello` first: the server is ready for the run.
    if (msg.type === 'hello') send({ type: 'run', ...request });
    if (msg.type === 'exit') {
      exited = true;
      socket.close(1000);
    }
    onMessage(msg);
  });
  // 'error' is always followed by 'close', which does the work.
  socket.addEventListener('close', (event) => onClose({ opened, code: event.code, exited }));

  return {
    send,
    sendBytes(bytes) {
      if (socket.readyState === WebSocket.OPEN) socket.send(bytes);
    },
    close: () => socket.close(1000),
  };
}
