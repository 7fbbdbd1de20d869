import { connect } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly raw: string;
}

/**
 * Sends bytes exactly as given over TCP (no client normalises the target or
 * framing) and reads until the server closes or one response is complete.
 */
export function rawRequest(port: number, request: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = (): void => {
      socket.destroy();
      const raw = Buffer.concat(chunks).toString('latin1');
      const split = raw.indexOf('\r\n\r\n');
      const head = split === -1 ? raw : raw.slice(0, split);
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      let body = split === -1 ? '' : raw.slice(split + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(statusLine?.split(' ')[1] ?? 0), headers, body, raw });
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      if (split === -1) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, split));
      if (length && text.length - split - 4 >= Number(length[1])) finish();
      else if (/\r\ntransfer-encoding:\s*chunked/i.test(text.slice(0, split)) && text.endsWith('\r\n0\r\n\r\n')) finish();
    });
    socket.on('end', finish);
    socket.on('error', (err) => (chunks.length ? finish() : reject(err)));
    socket.write(request);
  });
}

function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol === -1) return out;
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (!size) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/**
 * A POST of `body` (JSON) to `path` on a raw socket, answered 200: the body the
 * sidecar puts on the client's socket, de-chunked, with no SDK in between.
 */
export async function rawPost(port: number, path: string, body: string, headers: Record<string, string> = {}): Promise<string> {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const answer = await rawRequest(port,
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  if (answer.status !== 200) throw new Error(`expected 200, got ${answer.status}: ${answer.body.slice(0, 200)}`);
  return answer.body;
}
