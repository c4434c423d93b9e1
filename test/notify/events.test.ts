import { buildEvents, isFailing } from '../../src/notify/events.js';

describe('buildEvents', () => {
  it.each([
    ['success', null, ['success']],
    ['success', 'success', ['success']],
    ['success', 'failure', ['success', 'fixed']],
    ['success', 'timeout', ['success', 'fixed']],
    ['failure', null, ['failure']],
    ['failure', 'success', ['failure']],
    ['failure', 'failure', ['failure', 'still-failing']],
    ['timeout', 'failure', ['failure', 'still-failing']],
    ['failure', 'timeout', ['failure', 'still-failing']],
    ['timeout', 'success', ['failure']],
    ['interrupted', 'failure', []],
    ['interrupted', null, []],
  ] as const)('%s after %s → %j', (result, previous, events) => {
    expect(buildEvents(result, previous)).toEqual(events);
  });

  it('counts failure and timeout as failing, nothing else', () => {
    expect(
      ['success', 'failure', 'timeout', 'interrupted', null].map((r) => isFailing(r as never)),
    ).toEqual([false, true, true, false, false]);
  });
});
