import type { OptionDoc } from 'stagepost/plugin-api';

/** The options of `use: email`: the keys its validate accepts, and their docs. */
export const EMAIL_OPTIONS: readonly OptionDoc[] = [
  {
    key: 'transport',
    type: 'string',
    default: 'smtp://localhost:25',
    description:
      'Where mail goes: `smtp://host:port`, `smtps://user:${SMTP_PASSWORD}@host:465` (TLS), or `dir:./mail` — no server: each message is written as an `.eml` file into that directory (relative to ci.yaml), for trying stagepost out and for tests. Messages that cannot be sent wait in the outbox under `state_dir` and are retried, across restarts.',
  },
  {
    key: 'from',
    type: 'mailbox',
    required: true,
    description: 'The sender, e.g. `"Staging <staging@example.com>"`.',
  },
  {
    key: 'to',
    type: 'mailbox | list of mailbox',
    description:
      'The operators: they get every message of the events in `on`. Required unless `committers: true`.',
  },
  {
    key: 'committers',
    type: 'boolean | map',
    default: 'false',
    description:
      'Also mail the authors of the commits in the build: `true` for every author, `{ domains: [example.com], addresses: [ann@partner.org] }` for only those (see Mail to committers below).',
  },
];
