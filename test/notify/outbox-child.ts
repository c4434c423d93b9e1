// Run by outbox-crash.test.ts as its own process (node --import tsx), so the
// test can `kill -9` it while a mail is being delivered.
import { NotifyDispatcher } from '../../src/notify/dispatcher.js';
import { createLogger } from '../../src/log.js';
import { buildDraft, notifierConfig } from './helpers.js';

const [stateDir, port] = process.argv.slice(2);
const dispatcher = new NotifyDispatcher({
  stateDir: stateDir,
  log: createLogger({ format: 'json' }),
  redact: (t) => t,
});
await dispatcher.setNotifiers(
  [
    notifierConfig('email', ['failure'], {
      transport: `smtp://127.0.0.1:${port}`,
      from: 'staging@example.com',
      to: 'ops@example.com',
    }),
  ],
  new Map(),
);
process.stdout.write('configured\n');
await dispatcher.dispatch(buildDraft(), ['failure']);
process.stdout.write('dispatch returned\n');
