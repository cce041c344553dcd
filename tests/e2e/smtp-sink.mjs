// The SMTP relay of the browser tests: accepts every mail the server sends and writes it as
// DIR/<n>.json ({mail_from, rcpt, data}), so a test can check what really went out (envelope
// and all). Listens on loopback, prints `sink=PORT` once ready. Started by run.sh.
//
//   node smtp-sink.mjs DIR

import { createServer } from 'node:net';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node smtp-sink.mjs DIR');
  process.exit(2);
}
let count = 0;

const server = createServer((sock) => {
  let buf = '';
  let inData = false;
  let mail = { mail_from: '', rcpt: [], data: '' };
  const say = (line) => sock.write(`${line}\r\n`);
  say('220 e2e-sink ESMTP');
  sock.setEncoding('latin1');
  sock.on('data', (chunk) => {
    buf += chunk;
    for (;;) {
      if (inData) {
        const end = buf.indexOf('\r\n.\r\n');
        const atStart = buf.startsWith('.\r\n');
        if (end < 0 && !atStart) return;
        const body = atStart ? '' : buf.slice(0, end + 2);
        buf = buf.slice(atStart ? 3 : end + 5);
        mail.data = body.replace(/^\.\./gm, '.');
        const n = ++count;
        const tmp = join(dir, `.${n}.tmp`);
        writeFileSync(tmp, JSON.stringify(mail));
        renameSync(tmp, join(dir, `${n}.json`));
        mail = { mail_from: '', rcpt: [], data: '' };
        inData = false;
        say('250 2.0.0 queued');
        continue;
      }
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      const up = line.toUpperCase();
      if (up.startsWith('EHLO')) say('250-e2e-sink\r\n250-8BITMIME\r\n250 SMTPUTF8');
      else if (up.startsWith('HELO')) say('250 e2e-sink');
      else if (up.startsWith('MAIL FROM:')) {
        mail.mail_from = line.slice(10).trim();
        say('250 2.1.0 ok');
      } else if (up.startsWith('RCPT TO:')) {
        mail.rcpt.push(line.slice(8).trim().replace(/^<|>.*$/g, '').toLowerCase());
        say('250 2.1.5 ok');
      } else if (up === 'DATA') {
        inData = true;
        say('354 go ahead');
      } else if (up === 'QUIT') {
        say('221 2.0.0 bye');
        sock.end();
        return;
      } else say('250 ok');
    }
  });
  sock.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => {
  console.log(`sink=${server.address().port}`);
});
