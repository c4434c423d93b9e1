import { customerUrl, stepEnvironment } from '../../src/site/urls.js';
import { branchOf, siteConfig } from './config.js';

describe('customerUrl', () => {
  it('is <base_url>/<branch>/<customer>/ without double slashes', () => {
    const config = siteConfig('  base_url: https://karltest.example.com/');
    expect(customerUrl(config, branchOf(config, 'branch1'), 'osf')).toBe(
      'https://karltest.example.com/branch1/osf/',
    );
    const raw = { ...config, site: { baseUrl: 'https://host.example.com/stage//' } };
    expect(customerUrl(raw, branchOf(config, 'staging'), 'osf')).toBe(
      'https://host.example.com/stage/staging/osf/',
    );
  });

  it('is null without base_url', () => {
    const config = siteConfig('  smtp_relay: smtp://localhost:25');
    expect(customerUrl(config, branchOf(config, 'staging'), 'osf')).toBeNull();
  });
});

describe('stepEnvironment', () => {
  const config = siteConfig('  base_url: https://karltest.example.com');

  it('gives exactly the variables of the SPEC table', () => {
    const env = stepEnvironment(config, branchOf(config, 'branch1'), {
      id: 17,
      revisions: { karl: '3f2a9c1e', 'osf-karl.v2': 'abc123' },
      previous: { karl: '0badc0de', 'osf-karl.v2': null },
    });
    expect(env).toEqual({
      STAGEPOST_BRANCH: 'branch1',
      STAGEPOST_BUILD: '17',
      STAGEPOST_DIR: '/srv/staging/branch1',
      STAGEPOST_CUSTOMERS: 'osf',
      STAGEPOST_MAILIN: 'osf',
      STAGEPOST_URLS: 'https://karltest.example.com/branch1/osf/',
      STAGEPOST_REV_KARL: '3f2a9c1e',
      STAGEPOST_PREV_REV_KARL: '0badc0de',
      STAGEPOST_REV_OSF_KARL_V2: 'abc123',
      STAGEPOST_PREV_REV_OSF_KARL_V2: '',
      STAGEPOST_SMTP: '127.0.0.1:2526',
      STAGEPOST_PORT: '6544',
    });
  });

  it('leaves MAILIN, SMTP and PREV_REV empty when there is nothing to say', () => {
    const env = stepEnvironment(config, branchOf(config, 'staging'), {
      id: 1,
      revisions: { karl: '4812' },
      previous: {},
    });
    expect(env.STAGEPOST_CUSTOMERS).toBe('osf anothercustomer');
    expect(env.STAGEPOST_URLS).toBe(
      'https://karltest.example.com/staging/osf/ https://karltest.example.com/staging/anothercustomer/',
    );
    expect(env.STAGEPOST_MAILIN).toBe('');
    expect(env.STAGEPOST_SMTP).toBe('');
    expect(env.STAGEPOST_REV_KARL).toBe('4812');
    expect(env.STAGEPOST_PREV_REV_KARL).toBe('');
  });

  it('has empty URLS without base_url', () => {
    const bare = siteConfig('  smtp_relay: smtp://localhost:25');
    expect(
      stepEnvironment(bare, branchOf(bare, 'staging'), { id: 1, revisions: {}, previous: {} })
        .STAGEPOST_URLS,
    ).toBe('');
  });
});
