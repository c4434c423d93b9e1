import vm from 'node:vm';
import { Redactor, redactDeep } from '../../src/util/redact.js';

describe('redactDeep: one deep redaction for logs, HTTP and the outbox', () => {
  const r = new Redactor();
  r.add('hunter2-secret');
  const redact = (t: string) => r.redact(t);

  it('redacts strings in arrays and nested objects, and leaves other values alone', () => {
    expect(
      redactDeep({ a: ['x hunter2-secret', 3, null, true], b: { c: 'hunter2-secret' } }, redact),
    ).toEqual({ a: ['x [secure]', 3, null, true], b: { c: '[secure]' } });
  });

  it('redacts what JSON would show of a class instance, a Date and an object of another realm', () => {
    class Failure {
      url = 'https://bob:pw@git.example.com/x.git';
    }
    const foreign = vm.runInNewContext('({ error: "auth failed: hunter2-secret" })') as object;
    const at = new Date(0);
    expect(r.redactValue({ failure: new Failure(), foreign, at })).toEqual({
      failure: { url: 'https://bob:[secure]@git.example.com/x.git' },
      foreign: { error: 'auth failed: [secure]' },
      at: at.toISOString(),
    });
  });
});
