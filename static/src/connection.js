// The interactive WebSocket (`/api/v1/ws` on this origin), reconnecting with
// backoff when it drops. Text frames are JSON control messages, binary frames
// are raw terminal bytes.

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;
// Keeps idle connections (a program waiting for input) alive through proxies.
const PING_INTERVAL_MS = 25_000;

export function socketUrl(path = '/api/v1/ws') {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

/**
 * Handlers:
 * - `onOpen()`
 * - `onMessage(msg)`: a parsed control message
 * - `onOutput(bytes)`: a binary frame as a Uint8Array
 * - `onClose({code, reason, retryInMs})`: the socket closed; a new attempt follows
 */
export class Connection {
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.delay = RECONNECT_MIN_MS;
    this.pingTimer = null;
    this.connect();
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  connect() {
    const socket = new WebSocket(this.url);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;

    socket.addEventListener('open', () => {
      this.delay = RECONNECT_MIN_MS;
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), PING_INTERVAL_MS);
      this.handlers.onOpen();
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') {
        this.handlers.onOutput(new Uint8Array(event.data));
        return;
      }
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return; // the contract says text frames are JSON; ignore anything else
      }
      if (msg && typeof msg.type === 'string') this.handlers.onMessage(msg);
    });
    socket.addEventListener('close', (event) => {
      clearInterval(this.pingTimer);
      const retryInMs = this.delay;
      this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
      setTimeout(() => this.connect(), retryInMs);
      this.handlers.onClose({ code: event.code, reason: event.reason, retryInMs });
    });
    // 'error' is always followed by 'close', which does the work.
  }

  /** Send a control message; false when the socket is not open. */
  send(msg) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  /** Send terminal input as one binary frame. */
  sendBytes(bytes) {
    if (!this.isOpen) return false;
    this.socket.send(bytes);
    return true;
  }
}
