/**
 * nginx as the "what a tuned C proxy does on one core" reference: one worker, upstream keep-alive,
 * a fixed Authorization header, no access log. Everything it writes (pid, error log, temp dirs)
 * stays in the bench's temp dir, so it runs as the current user with no system nginx setup.
 */
import { writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';

/**
 * Writes <dir>/nginx.conf and returns the argv for `nginx` (foreground: the orchestrator owns it).
 * Requests to http://127.0.0.1:<listenPort>/x go to the upstream's /nginx/x.
 */
export function writeNginxConfig(dir, { listenPort, upstreamPort }) {
  const file = (name) => path.join(dir, name);
  // As root, nginx would switch its worker to "nobody", which cannot read our temp dir: stay root.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : '';
  const config = `${user}daemon off;
master_process on;
worker_processes 1;
pid ${file('nginx.pid')};
error_log ${file('error.log')} warn;

events {
  worker_connections 4096;
}

http {
  access_log off;
  client_body_temp_path ${file('client_body')};
  proxy_temp_path ${file('proxy_temp')};
  fastcgi_temp_path ${file('fastcgi_temp')};
  uwsgi_temp_path ${file('uwsgi_temp')};
  scgi_temp_path ${file('scgi_temp')};

  # nginx closes a keep-alive connection after 1000 requests by default (client and upstream side);
  # node does not, so lift the limit rather than make nginx pay reconnects the others do not.
  keepalive_requests 1000000;

  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }

  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://bench_upstream/nginx/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer x";
    }
  }
}
`;
  writeFileSync(file('nginx.conf'), config);
  return ['-p', dir, '-c', file('nginx.conf'), '-e', file('error.log')];
}
