// The sample web app of the stagepost demo: one tiny server per branch site,
// serving /<customer>/ for each customer of the branch. On start it mails the
// branch's mail catcher (STAGEPOST_SMTP), as a real app would mail its users.
import http from 'node:http';
import net from 'node:net';

const port = Number(process.env.APP_PORT);
const branch = process.env.STAGEPOST_BRANCH ?? 'unknown';
const revision = process.env.STAGEPOST_REV_APP ?? 'unknown';
const customers = (process.env.STAGEPOST_CUSTOMERS ?? '').split(' ').filter(Boolean);
const mailin = (process.env.STAGEPOST_MAILIN ?? '').split(' ').filter(Boolean);
const startedAt = new Date().toISOString();

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><meta charset="utf-8"><title>${esc(title)}</title>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">${body}</body>`;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  const prefix = String(req.headers['x-forwarded-prefix'] ?? '');
  const match = /^\/([^/]+)\/?$/.exec(url.pathname);
  if (match && customers.includes(match[1])) {
    const customer = match[1];
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      page(
        `${customer} on ${branch}`,
        `<h1>${esc(customer)}</h1>
<p>Branch site <b>${esc(branch)}</b>, revision <code>${esc(revision)}</code>, started ${esc(startedAt)}.</p>
<p>Mail-in: ${mailin.includes(customer) ? 'processed on this branch' : 'not on this branch'}.</p>`,
      ),
    );
    return;
  }
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      page(
        branch,
        `<h1>${esc(branch)}</h1><ul>${customers.map((c) => `<li><a href="${esc(prefix)}/${esc(c)}/">${esc(c)}</a></li>`).join('')}</ul>`,
      ),
    );
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('no such customer\n');
});

server.listen(port, '127.0.0.1', () => {
  console.log(`${startedAt} ${branch} at ${revision} listening on 127.0.0.1:${port}`);
  sendStartMail().catch((err) => console.log(`start mail not sent: ${err.message}`));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

/** A few lines of SMTP: enough to give the mail catcher something to show. */
async function sendStartMail() {
  const target = process.env.STAGEPOST_SMTP;
  if (!target) return;
  const [host, smtpPort] = target.split(':');
  const socket = net.connect(Number(smtpPort), host);
  socket.setEncoding('utf8');
  socket.setTimeout(10_000, () => socket.destroy(new Error('SMTP timeout')));
  const replies = [];
  let partial = '';
  let waiting = null;
  const deliver = () => {
    if (!waiting || replies.length === 0) return;
    const line = replies.shift();
    const w = waiting;
    waiting = null;
    if (Number(line.slice(0, 3)) < 400) w.resolve(line);
    else w.reject(new Error(line));
  };
  socket.on('data', (chunk) => {
    const lines = (partial + chunk).split('\r\n');
    partial = lines.pop() ?? '';
    // A reply ends with "NNN text"; "NNN-text" lines continue it.
    for (const line of lines) if (/^\d{3}( |$)/.test(line)) replies.push(line);
    deliver();
  });
  const failed = new Promise((_, reject) => socket.on('error', reject));
  const reply = () =>
    Promise.race([
      failed,
      new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        deliver();
      }),
    ]);
  const send = (line) => {
    socket.write(`${line}\r\n`);
    return reply();
  };

  const to = `${mailin[0] ?? customers[0] ?? 'users'}-users@example.test`;
  await reply();
  await send('HELO demo-app.example.test');
  await send(`MAIL FROM:<noreply@${branch}.example.test>`);
  await send(`RCPT TO:<${to}>`);
  await send('DATA');
  await send(
    [
      `From: ${branch} app <noreply@${branch}.example.test>`,
      `To: <${to}>`,
      `Subject: [${branch}] app restarted at revision ${revision}`,
      `Date: ${new Date().toUTCString()}`,
      '',
      `The ${branch} app server started at ${startedAt}.`,
      'On a staging site this mail is caught, never delivered.',
      '.',
    ].join('\r\n'),
  );
  socket.end('QUIT\r\n');
  console.log(`start mail sent to the catcher at ${target}`);
}
