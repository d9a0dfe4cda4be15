import { test } from 'node:test';
import assert from 'node:assert/strict';

import { LoginThrottle, type LoginThrottleOptions } from '../../src/security/index.js';

/** A clock and a sleep under the test's control: sleeps finish only when time is advanced. */
function fakeTime() {
  let now = 0;
  const pending: { until: number; ms: number; resolve: () => void }[] = [];
  const requested: number[] = [];
  return {
    requested,
    now: () => now,
    sleep: (ms: number) =>
      new Promise<void>((resolve) => {
        requested.push(ms);
        pending.push({ until: now + ms, ms, resolve });
      }),
    /** Moves the clock on and wakes every sleep that has run out. */
    async advance(ms: number) {
      now += ms;
      for (const sleeper of pending.filter((entry) => entry.until <= now)) {
        pending.splice(pending.indexOf(sleeper), 1);
        sleeper.resolve();
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
}

function throttleWith(time: ReturnType<typeof fakeTime>, options: LoginThrottleOptions = {}): LoginThrottle {
  return new LoginThrottle({ now: time.now, sleep: time.sleep, ...options });
}

/** Tracks whether a promise has settled yet. */
function track(promise: Promise<number>): { done: boolean; value?: number } {
  const state: { done: boolean; value?: number } = { done: false };
  void promise.then((value) => {
    state.done = true;
    state.value = value;
  });
  return state;
}

test('a failure resolves only after about a second', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time);
  const failed = track(throttle.fail('peer-a'));
  await time.advance(999);
  assert.equal(failed.done, false);
  await time.advance(1);
  assert.deepEqual(failed, { done: true, value: 1000 });
});

test('one peer waiting does not delay another', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time);
  // peer-a has failed repeatedly and now waits 4 s…
  for (let i = 0; i < 2; i++) {
    const warmup = throttle.fail('peer-a');
    await time.advance(5000);
    await warmup;
  }
  const slow = track(throttle.fail('peer-a'));
  // …while peer-b, failing for the first time, gets the base delay.
  const fast = track(throttle.fail('peer-b'));
  await time.advance(1000);
  assert.deepEqual(fast, { done: true, value: 1000 });
  assert.equal(slow.done, false);
  await time.advance(3000);
  assert.deepEqual(slow, { done: true, value: 4000 });
});

test('repeated failures of one peer grow the delay up to the ceiling', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time);
  for (let i = 0; i < 6; i++) {
    const failure = throttle.fail('peer-a');
    await time.advance(5000);
    await failure;
  }
  assert.deepEqual(time.requested, [1000, 2000, 4000, 5000, 5000, 5000]);
});

test('concurrent failures of one peer each count', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time);
  const all = Promise.all([throttle.fail('p'), throttle.fail('p'), throttle.fail('p')]);
  await time.advance(5000);
  assert.deepEqual(await all, [1000, 2000, 4000]);
});

test('a success resets the peer', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time);
  const first = throttle.fail('peer-a');
  await time.advance(1000);
  await first;
  assert.equal(throttle.nextDelay('peer-a'), 2000);
  throttle.succeed('peer-a');
  assert.equal(throttle.nextDelay('peer-a'), 1000);
  assert.equal(throttle.size, 0);
});

test('a quiet period resets the peer and frees its memory', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time, { quietMs: 60_000 });
  const first = throttle.fail('peer-a');
  await time.advance(1000);
  await first;
  assert.equal(throttle.size, 1);
  await time.advance(59_000);
  assert.equal(throttle.nextDelay('peer-a'), 1000);
  // The next failure of anyone sweeps quiet peers away.
  const other = throttle.fail('peer-b');
  assert.equal(throttle.size, 1);
  await time.advance(1000);
  await other;
  const again = throttle.fail('peer-a');
  await time.advance(1000);
  assert.equal(await again, 1000);
});

test('the number of tracked peers is capped, oldest forgotten first', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time, { maxPeers: 3 });
  for (const peer of ['a', 'b', 'c', 'd', 'e']) {
    void throttle.fail(peer);
    await time.advance(1);
  }
  assert.equal(throttle.size, 3);
  assert.equal(throttle.nextDelay('a'), 1000); // forgotten
  assert.equal(throttle.nextDelay('e'), 2000); // remembered
  await time.advance(5000);
});

test('options are checked and tunable', async () => {
  assert.throws(() => new LoginThrottle({ baseDelayMs: -1 }), RangeError);
  assert.throws(() => new LoginThrottle({ growth: 0.5 }), RangeError);
  assert.throws(() => new LoginThrottle({ maxPeers: 0 }), RangeError);
  assert.throws(() => new LoginThrottle({ quietMs: Number.NaN }), RangeError);
  const time = fakeTime();
  const throttle = throttleWith(time, { baseDelayMs: 100, growth: 3, maxDelayMs: 500 });
  assert.equal(throttle.nextDelay('x'), 100);
  for (let i = 0; i < 3; i++) void throttle.fail('x');
  await time.advance(500);
  assert.deepEqual(time.requested, [100, 300, 500]);
});

test('the default sleep can be aborted', async () => {
  const throttle = new LoginThrottle();
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(throttle.fail('peer', controller.signal), { name: 'AbortError' });
  assert.equal(throttle.nextDelay('peer'), 2000);
});

test('a failed check cools its login down: attempts meanwhile are refused unchecked, whatever the peer', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time);
  let checks = 0;
  const wrong = async (): Promise<string | undefined> => {
    checks++;
    return undefined;
  };
  assert.deepEqual(await throttle.check('alice', wrong), { checked: true, result: undefined });
  assert.equal(throttle.coolingMs('alice'), 1000);
  // A thousand more attempts (from as many connections) within the second: none is checked.
  for (let i = 0; i < 1000; i++) {
    const verdict = await throttle.check('alice', wrong);
    assert.equal(verdict.checked, false);
  }
  assert.equal(checks, 1);
  // Another login is not affected.
  assert.deepEqual(await throttle.check('bob', async () => 'bob'), { checked: true, result: 'bob' });
  await time.advance(1000);
  assert.equal(throttle.coolingMs('alice'), 0);
  await throttle.check('alice', wrong);
  assert.equal(checks, 2);
  assert.equal(throttle.coolingMs('alice'), 2000, 'the cooldown grows with each failure');
});

test('a success ends the cooldown; the ceiling bounds guesses to about 12 a minute per login', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time);
  let checks = 0;
  // A guesser trying every 100 ms for ten minutes.
  for (let t = 0; t < 600_000; t += 100) {
    await throttle.check('alice', async () => {
      checks++;
      return undefined;
    });
    await time.advance(100);
  }
  // 1 + 2 + 4 s, then one every 5 s: 3 + (600 - 7) / 5 ≈ 121 in ten minutes.
  assert.ok(checks >= 115 && checks <= 125, `${checks} checks in 10 minutes`);
  await time.advance(5000);
  assert.deepEqual(await throttle.check('alice', async () => 'alice'), { checked: true, result: 'alice' });
  assert.equal(throttle.coolingMs('alice'), 0);
});

test('a login being checked refuses a second attempt on it; at most `concurrency` checks run at once', async () => {
  const time = fakeTime();
  const throttle = throttleWith(time, { concurrency: 2 });
  const gates: Array<() => void> = [];
  let running = 0;
  let most = 0;
  const slow = () =>
    new Promise<string | undefined>((resolve) => {
      running++;
      most = Math.max(most, running);
      gates.push(() => {
        running--;
        resolve('ok');
      });
    });
  const attempts = ['a', 'b', 'c', 'd'].map((login) => throttle.check(login, slow));
  const again = await throttle.check('a', slow);
  assert.equal(again.checked, false, 'a second attempt on a login being checked is refused');
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(running, 2);
  while (gates.length > 0) {
    gates.shift()!();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const verdicts = await Promise.all(attempts);
  assert.ok(verdicts.every((verdict) => verdict.checked));
  assert.equal(most, 2);
  assert.throws(() => new LoginThrottle({ concurrency: 0 }), RangeError);
});
