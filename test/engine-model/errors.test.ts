/** Bad input gives an EngineInputError that names what is wrong. */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CausalLM, loadModel } from '../../engine/model/index.ts';
import { onnx } from '../../engine/model/onnx.ts';
import { EngineInputError } from '../../engine/types.ts';

const MODELS = join(import.meta.dirname, '../fixtures/models');
const work = mkdtempSync(join(tmpdir(), 'icl-model-err-'));
const opts = { executionProvider: 'cpu' as const, cacheDir: join(work, 'cache'), decompositionCacheBytes: 2 ** 24, threads: 1 };
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function inputError(p: Promise<unknown>): Promise<EngineInputError> {
  const err = await p.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(EngineInputError);
  return err as EngineInputError;
}

function copyOf(dir: string, name: string): string {
  const to = join(work, name);
  cpSync(join(MODELS, dir), to, { recursive: true });
  return to;
}

describe('model errors', () => {
  let gpt2: CausalLM;
  let neox: CausalLM;
  beforeAll(async () => {
    gpt2 = await loadModel(join(MODELS, 'gpt2'), opts);
    neox = await loadModel(join(MODELS, 'gpt_neox-nopast'), opts);
  });
  afterAll(async () => {
    await gpt2?.dispose();
    await neox?.dispose();
  });

  it('a module the family lacks names family and module', async () => {
    for (const [lm, fam] of [[gpt2, 'gpt2'], [neox, 'gpt_neox']] as const) {
      const e = await inputError(lm.withEdit({ module: 'fc_up', layer: 0, ratio: 0.5, svd: 'exact', seed: 0 }));
      expect(e.message).toContain('fc_up');
      expect(e.message).toContain(fam);
      // also at ratio 0: the cell is invalid whatever its ratio
      await inputError(lm.withEdit({ module: 'fc_up', layer: 0, ratio: 0, svd: 'exact', seed: 0 }));
    }
  });

  it('a layer out of range, a bad ratio or svd mode', async () => {
    expect((await inputError(gpt2.withEdit({ module: 'mlp', layer: 3, ratio: 0.5, svd: 'exact', seed: 0 }))).message).toMatch(/layer 3/);
    await inputError(gpt2.withEdit({ module: 'mlp', layer: -2, ratio: 0.5, svd: 'exact', seed: 0 }));
    await inputError(gpt2.withEdit({ module: 'mlp', layer: 0, ratio: 1.5, svd: 'exact', seed: 0 }));
    await inputError(gpt2.withEdit({ module: 'mlp', layer: 0, ratio: 0.5, svd: 'lanczos' as 'exact', seed: 0 }));
  });

  it('a missing folder names the folder', async () => {
    const missing = join(work, 'no-such-model');
    const e = await inputError(loadModel(missing, opts));
    expect(e.message).toContain(missing);
  });

  it('a missing model.onnx names the file', async () => {
    const dir = copyOf('gpt2', 'no-onnx');
    unlinkSync(join(dir, 'model.onnx'));
    const e = await inputError(loadModel(dir, opts));
    expect(e.message).toContain(join(dir, 'model.onnx'));
  });

  it('a corrupt model.onnx names the file', async () => {
    const dir = copyOf('gpt2', 'corrupt');
    writeFileSync(join(dir, 'model.onnx'), Buffer.from('this is not a protobuf \xff\xff\xff\xff'));
    const e = await inputError(loadModel(dir, opts));
    expect(e.message).toContain(join(dir, 'model.onnx'));
  });

  it('a missing external data file names it', async () => {
    const dir = copyOf('llama', 'no-data');
    unlinkSync(join(dir, 'model.onnx_data'));
    const e = await inputError(loadModel(dir, opts));
    expect(e.message).toContain('model.onnx_data');
  });

  it('a missing config.json or tokenizer.json names the file', async () => {
    const a = copyOf('gpt2', 'no-config');
    unlinkSync(join(a, 'config.json'));
    expect((await inputError(loadModel(a, opts))).message).toContain(join(a, 'config.json'));
    const b = copyOf('gpt2', 'no-tokenizer');
    unlinkSync(join(b, 'tokenizer.json'));
    expect((await inputError(loadModel(b, opts))).message).toContain(join(b, 'tokenizer.json'));
  });

  it('an unsupported model_type names config.json (not the value it holds)', async () => {
    const dir = copyOf('gpt2', 'unsupported-type');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'opt-secret-value', hidden_size: 32 }));
    const e = await inputError(loadModel(dir, opts));
    expect(e.message).toContain('model_type');
    expect(e.message).toContain(join(dir, 'config.json'));
    expect(e.message).not.toContain('secret');
  });

  it('a config.json linked to another file: the error names the file, never its bytes', async () => {
    const secret = join(work, 'secret.txt');
    writeFileSync(secret, 'root:x:0:0:hunter2:/root:/bin/bash\n');
    const dir = copyOf('gpt2', 'linked-config');
    unlinkSync(join(dir, 'config.json'));
    symlinkSync(existsSync('/etc/passwd') ? '/etc/passwd' : secret, join(dir, 'config.json'));
    const e = await inputError(loadModel(dir, opts));
    expect(e.message).toBe(`${join(dir, 'config.json')} is not valid JSON`);
    const other = copyOf('gpt2', 'linked-tokenizer');
    writeFileSync(secret, JSON.stringify({ password: 'hunter2', model: { type: 'hunter2' } }));
    unlinkSync(join(other, 'tokenizer.json'));
    symlinkSync(secret, join(other, 'tokenizer.json'));
    const t = await inputError(loadModel(other, opts));
    expect(t.message).toContain(join(other, 'tokenizer.json'));
    expect(t.message).not.toContain('hunter2');
  });

  it('external data outside the model folder is refused before it is read', async () => {
    const dir = copyOf('llama', 'escaping-data');
    const model = onnx.ModelProto.decode(readFileSync(join(dir, 'model.onnx')));
    let changed = 0;
    for (const t of model.graph!.initializer!) {
      for (const e of t.externalData ?? []) {
        if (e.key === 'location') {
          e.value = '../../../../../../etc/passwd';
          changed++;
        }
      }
    }
    expect(changed).toBeGreaterThan(0);
    writeFileSync(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    const e = await inputError(loadModel(dir, opts));
    expect(e.message).toMatch(/external data location is outside the model folder/);
    expect(e.message).not.toContain('root:');
  });

  it('a config.json that contradicts the graph is caught by the shape check', async () => {
    const dir = copyOf('llama-nopast', 'wrong-sizes');
    const cfg = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'config.json'), 'utf8'));
    cfg.intermediate_size = 40;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const e = await inputError(loadModel(dir, opts));
    expect(e.message).toMatch(/gate_proj|up_proj|down_proj/);
  });

  it('the fingerprint depends on content, not on the path', async () => {
    const dir = copyOf('gpt2', 'same-content');
    const copy = await loadModel(dir, opts);
    expect(copy.info.fingerprint).toBe(gpt2.info.fingerprint);
    await copy.dispose();
    expect(neox.info.fingerprint).not.toBe(gpt2.info.fingerprint);
  });
});

describe('tokenizer', () => {
  it('bosId is the token a post-processor puts first; encode never adds it', async () => {
    const dir = copyOf('gpt2-nopast', 'with-bos');
    const { readFileSync } = await import('node:fs');
    const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    tj.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [0], tokens: ['<|endoftext|>'] } },
    };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
    const lm = await loadModel(dir, opts);
    expect(lm.tokenizer.bosId).toBe(0);
    const ids = lm.tokenizer.encode(' pos');
    expect(ids).toEqual([389]);
    await lm.dispose();
  });
});

describe('execution provider', () => {
  it("'cuda' either runs and matches the references, or fails as a worker problem (not an input error)", async () => {
    const refs = JSON.parse((await import('node:fs')).readFileSync(join(MODELS, 'references.json'), 'utf8'));
    const fam = refs.families.llama;
    let lm: CausalLM | null = null;
    try {
      lm = await loadModel(join(MODELS, 'llama'), { ...opts, executionProvider: 'cuda' });
    } catch (e) {
      expect(e).not.toBeInstanceOf(EngineInputError);
      expect((e as Error).message).toMatch(/cuda/i);
      return;
    }
    expect(lm.weightFeeding).toBe('targeted');
    for (const ref of [fam.edits[0], fam.edits.find((x: { name: string }) => x.name === 'all@1:0.5')]) {
      const e = await lm.withEdit(ref.edit ? { ...ref.edit, svd: 'exact', seed: 0 } : null);
      const out = await e.nextTokenLogprobs(await e.prefill([]), fam.prompts.map((p: { ids: number[] }) => p.ids));
      out.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(v - ref.next_token_logprobs[i][j])).toBeLessThan(1e-3)));
      e.release();
    }
    await lm.dispose();
  });
});
