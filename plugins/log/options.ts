import type { OptionDoc } from 'stagepost/plugin-api';

/** The options of `use: log`: the keys its validate accepts, and their docs. */
export const LOG_OPTIONS: readonly OptionDoc[] = [
  {
    key: 'level',
    type: '`info`, `warn`, `error`',
    default: 'warn for bad news, else info',
    description:
      "One line per notification in the daemon's own log (journald keeps it), at this level.",
  },
];
