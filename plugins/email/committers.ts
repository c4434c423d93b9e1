import type { OptionProblem } from 'stagepost/plugin-api';

/**
 * Which committers may be mailed: `committers: true` (any author of the
 * build's commits), `false`/absent (none), or an allow-list
 * `{ domains: [example.com], addresses: [ann@partner.org] }` so that an
 * operator can be sure mail reaches only the team. A subdomain of a listed
 * domain is allowed too (`dev.example.com` under `example.com`).
 */
export type CommitterFilter = (address: string) => boolean;

const KEYS = ['domains', 'addresses'];
const DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}$/;

export function committersProblems(value: unknown): OptionProblem[] {
  if (value === undefined || typeof value === 'boolean') return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [
      {
        path: ['committers'],
        message: 'give true, false, or an allow-list like { domains: [example.com] }',
      },
    ];
  const problems: OptionProblem[] = [];
  const entries = value as Record<string, unknown>;
  for (const key of Object.keys(entries))
    if (!KEYS.includes(key))
      problems.push({
        path: ['committers', key],
        message: `unknown key; give ${KEYS.join(' and/or ')}`,
      });
  for (const key of KEYS) {
    const list = entries[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      problems.push({ path: ['committers', key], message: 'give a list' });
      continue;
    }
    list.forEach((item, i) => {
      const ok =
        typeof item === 'string' &&
        (key === 'domains' ? DOMAIN.test(item) : /^[^@\s]+@[^@\s]+$/.test(item));
      if (!ok)
        problems.push({
          path: ['committers', key, i],
          message: `${JSON.stringify(item)} is not ${key === 'domains' ? 'a domain like example.com' : 'a mail address'}`,
        });
    });
  }
  if (problems.length === 0 && !entries.domains && !entries.addresses)
    problems.push({
      path: ['committers'],
      message: 'an empty allow-list mails no committer; list domains or addresses, or give false',
    });
  return problems;
}

/** Null: no committer is mailed. Call only with options that passed committersProblems. */
export function committerFilter(value: unknown): CommitterFilter | null {
  if (value === true) return () => true;
  if (typeof value !== 'object' || value === null) return null;
  const { domains = [], addresses = [] } = value as { domains?: string[]; addresses?: string[] };
  const allowedDomains = domains.map((d) => d.toLowerCase());
  const allowedAddresses = new Set(addresses.map((a) => a.toLowerCase()));
  return (address) => {
    const lower = address.toLowerCase();
    if (allowedAddresses.has(lower)) return true;
    const domain = lower.slice(lower.lastIndexOf('@') + 1);
    return allowedDomains.some((d) => domain === d || domain.endsWith(`.${d}`));
  };
}
