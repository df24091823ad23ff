/** The session pool: one session per set of fed matrices, shared while in use, idle ones dropped beyond the bound. */
import type * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { SessionPool } from '../../engine/model/session.ts';

function fakes() {
  const created: string[] = [];
  const released: string[] = [];
  let fail = false;
  const create = async (fed: string[]) => {
    const key = fed.join('+') || 'pristine';
    await new Promise((r) => setTimeout(r, 5));
    if (fail) throw new Error(`cannot create ${key}`);
    created.push(key);
    return { key, release: async () => void released.push(key) } as unknown as ort.InferenceSession;
  };
  return { created, released, create, failNext: (v: boolean) => (fail = v) };
}

const keyOf = (s: ort.InferenceSession) => (s as unknown as { key: string }).key;
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('SessionPool', () => {
  it('shares one session per set (in any order), also between concurrent acquires', async () => {
    const f = fakes();
    const pool = new SessionPool(f.create, 1);
    const [a, b] = await Promise.all([pool.acquire(['w2', 'w1']), pool.acquire(['w1', 'w2'])]);
    expect(keyOf(a.session)).toBe('w2+w1');
    expect(b.session).toBe(a.session);
    expect(f.created).toEqual(['w2+w1']);
    a.release();
    b.release();
    const c = await pool.acquire(['w1', 'w2']);
    expect(c.session).toBe(a.session); // kept while idle within the bound
    c.release();
  });

  it('drops idle sessions beyond the bound before creating another, never one in use', async () => {
    const f = fakes();
    const pool = new SessionPool(f.create, 1);
    const pristine = await pool.acquire([]);
    const edited = await pool.acquire(['w1']); // the pristine one is in use: both live
    expect(f.released).toEqual([]);
    pristine.release();
    await settle();
    expect(f.released).toEqual(['pristine']); // idle and over the bound
    edited.release();
    const other = await pool.acquire(['w2']);
    expect(f.released).toEqual(['pristine', 'w1']); // released before w2 was created
    expect(f.created).toEqual(['pristine', 'w1', 'w2']);
    expect(pool.size).toBe(1);
    other.release();
    other.release(); // twice is harmless
    await pool.dispose();
    expect(f.released).toEqual(['pristine', 'w1', 'w2']);
  });

  it('forgets a session that failed to be created, so the next acquire tries again', async () => {
    const f = fakes();
    const pool = new SessionPool(f.create, 2);
    f.failNext(true);
    await expect(pool.acquire(['w1'])).rejects.toThrow(/cannot create w1/);
    f.failNext(false);
    const s = await pool.acquire(['w1']);
    expect(keyOf(s.session)).toBe('w1');
    s.release();
    await pool.dispose();
  });
});
