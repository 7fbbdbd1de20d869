// Test fixture, run by test/container/compose.test.ts inside the sidecar's
// network namespace (network_mode: service:firstops, like the agent).
//
// The fake gateway and the fake upstream live in the test process on the
// host's 127.0.0.1, which a container on a compose bridge network cannot
// reach. This relay listens on 127.0.0.1:<port> in the shared namespace for
// each port in LOOPBACK_PORTS and pipes every connection to the unix socket
// /loopback/<port>.sock, a bind-mounted directory where the test forwards it
// to its own 127.0.0.1:<port>. The sidecar thus talks to
// http://127.0.0.1:<port> exactly as the fakes see themselves addressed (the
// gateway checks the DPoP `htu` byte for byte), and no traffic leaves the
// machine's namespaces. When every port listens it connects to
// /loopback/ready.sock once, which the test awaits.
import { connect, createServer } from 'node:net';

const ports = (process.env.LOOPBACK_PORTS ?? '').split(',').filter(Boolean).map(Number);
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) {
  console.error(`loopback relay: LOOPBACK_PORTS must list ports, got ${JSON.stringify(process.env.LOOPBACK_PORTS)}`);
  process.exit(2);
}

let listening = 0;
const servers = ports.map((port) => {
  const server = createServer((inner) => {
    const outer = connect(`/loopback/${port}.sock`);
    inner.pipe(outer).pipe(inner);
    inner.on('error', () => outer.destroy());
    outer.on('error', () => inner.destroy());
  });
  server.listen(port, '127.0.0.1', () => {
    if (++listening < ports.length) return;
    console.log(`loopback relay: 127.0.0.1:{${ports.join(',')}} -> /loopback/<port>.sock`);
    connect('/loopback/ready.sock').end(ports.join(','));
  });
  return server;
});

// PID 1 in a container has no default SIGTERM action: exit on it explicitly.
process.on('SIGTERM', () => {
  for (const server of servers) server.close();
  process.exit(0);
});
