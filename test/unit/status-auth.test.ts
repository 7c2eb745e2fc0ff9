import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { ErrorCodes, isKioskError } from '../../core/errors.js';
import { isLoopbackHost, statusBindProblem } from '../../core/net.js';
import {
  authorizationMatches,
  checkAccess,
  hostHeaderIsLoopback,
  MIN_TOKEN_LENGTH,
  resolveStatusToken,
} from '../../daemon/status/auth.js';

const TOKEN = 'correct-horse-battery-staple';
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('status page access rules', () => {
  it('knows loopback addresses from the rest', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1'])
      assert.equal(isLoopbackHost(h), true, h);
    for (const h of [
      '0.0.0.0',
      '::',
      '192.168.1.10',
      '10.0.0.1',
      'kiosk.local',
      '128.0.0.1',
      '::ffff:10.0.0.1',
      '',
    ])
      assert.equal(isLoopbackHost(h), false, h);
  });

  it('checks the Host header against DNS rebinding', () => {
    for (const h of ['127.0.0.1:8080', 'localhost', 'localhost:1', '[::1]:8080'])
      assert.equal(hostHeaderIsLoopback(h), true, h);
    for (const h of [
      undefined,
      '',
      'evil.example',
      'evil.example:8080',
      '127.0.0.1.evil.example',
      '192.168.0.2:8080',
    ])
      assert.equal(hostHeaderIsLoopback(h), false, String(h));
  });

  it('accepts the token as bearer or as basic-auth password with any user, nothing else', () => {
    assert.equal(authorizationMatches(`Bearer ${TOKEN}`, TOKEN), true);
    assert.equal(authorizationMatches(`bearer ${TOKEN}`, TOKEN), true);
    assert.equal(authorizationMatches(basic('admin', TOKEN), TOKEN), true);
    assert.equal(authorizationMatches(basic('', TOKEN), TOKEN), true);
    assert.equal(
      authorizationMatches(basic(TOKEN, 'x'), TOKEN),
      false,
      'the token as user name is not enough',
    );
    assert.equal(authorizationMatches(`Bearer ${TOKEN}x`, TOKEN), false);
    assert.equal(authorizationMatches(`Bearer ${TOKEN.slice(1)}`, TOKEN), false);
    assert.equal(authorizationMatches(`Token ${TOKEN}`, TOKEN), false);
    assert.equal(authorizationMatches('Bearer', TOKEN), false);
    assert.equal(authorizationMatches(undefined, TOKEN), false);
    assert.equal(
      authorizationMatches(`Basic ${Buffer.from(TOKEN).toString('base64')}`, TOKEN),
      false,
      'no colon',
    );
  });

  it('requires the token when one is set, a loopback Host otherwise', () => {
    assert.equal(checkAccess(TOKEN, { host: 'evil.example', authorization: `Bearer ${TOKEN}` }), 'ok');
    assert.equal(checkAccess(TOKEN, { host: '127.0.0.1:8080' }), 'unauthorized');
    assert.equal(checkAccess(null, { host: '127.0.0.1:8080' }), 'ok');
    assert.equal(checkAccess(null, { host: 'evil.example:8080' }), 'bad_host');
  });

  it('refuses to bind beyond loopback without token_file, in the schema and at start', () => {
    assert.equal(statusBindProblem({ host: '127.0.0.1', token_file: null }), null);
    assert.equal(statusBindProblem({ host: '0.0.0.0', token_file: '/etc/fghv/token' }), null);
    assert.match(statusBindProblem({ host: '0.0.0.0', token_file: null }) ?? '', /token_file/);
    const parsed = configSchema.safeParse({ status: { host: '0.0.0.0' } });
    assert.equal(parsed.success, false);
    assert.deepEqual(parsed.error?.issues[0]?.path, ['status', 'token_file']);
    assert.equal(configSchema.safeParse({ status: { host: '0.0.0.0', enabled: false } }).success, true);
    assert.throws(
      () => resolveStatusToken({ host: '192.168.1.5', token_file: null }),
      (e) => isKioskError(e, ErrorCodes.STATUS_AUTH_CONFIG) && /not a loopback address/.test(e.message),
    );
  });

  it('reads the token from the first line of token_file, and refuses unreadable or short tokens', () => {
    assert.equal(resolveStatusToken({ host: '127.0.0.1', token_file: null }), null);
    assert.equal(
      resolveStatusToken({ host: '0.0.0.0', token_file: 't' }, () => `${TOKEN}\nignored\n`),
      TOKEN,
    );
    assert.equal(
      resolveStatusToken({ host: '0.0.0.0', token_file: 't' }, () => `  ${TOKEN}\r\n`),
      TOKEN,
    );
    const short = 'x'.repeat(MIN_TOKEN_LENGTH - 1);
    assert.throws(
      () => resolveStatusToken({ host: '0.0.0.0', token_file: 't' }, () => short),
      (e) => isKioskError(e, ErrorCodes.STATUS_AUTH_CONFIG) && /at least 16/.test(e.message),
    );
    assert.throws(
      () => resolveStatusToken({ host: '0.0.0.0', token_file: '/nonexistent/fghv-token' }),
      (e) => isKioskError(e, ErrorCodes.STATUS_AUTH_CONFIG) && /cannot be read/.test(e.message),
    );
  });
});
