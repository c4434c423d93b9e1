import type { OptionDoc } from 'stagepost/plugin-api';

/** The options of `use: webhook`: the keys its validate accepts, and their docs. */
export const WEBHOOK_OPTIONS: readonly OptionDoc[] = [
  {
    key: 'url',
    type: 'string',
    required: true,
    description:
      'The http(s) URL each notification is POSTed to as JSON (the notification, its `event` and a one-line `text` for chat systems). Put a token in it with `${HOOK_TOKEN}`; it is masked everywhere. A non-2xx answer or a timeout is retried from the outbox.',
  },
  { key: 'timeout', type: 'duration', default: '10s', description: 'How long one POST may take.' },
  {
    key: 'headers',
    type: 'map of strings',
    description: 'Extra request headers, e.g. `Authorization: "Bearer ${HOOK_TOKEN}"`.',
  },
];
