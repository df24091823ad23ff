/**
 * A Hugging Face Hub cache built from committed fixtures, laid out as huggingface_hub writes it:
 *
 *   <hub>/models--<org>--<name>/blobs/<sha256 of the file>
 *   <hub>/models--<org>--<name>/snapshots/<commit>/<path>  -> relative link to ../../blobs/<sha256>
 *   <hub>/models--<org>--<name>/refs/<ref>                 the commit hash, no newline
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

export interface HubSnapshot {
  commit: string;
  /** Path in the snapshot -> file to store there. */
  files: Record<string, string>;
}

/** Writes one model repository into the cache `hub` (e.g. $HF_HOME/hub); returns its snapshot folders by commit. */
export function writeHubModel(hub: string, id: string, snapshots: HubSnapshot[], refs: Record<string, string>): Record<string, string> {
  const [org, name] = id.split('/');
  const repo = join(hub, `models--${org}--${name}`);
  const out: Record<string, string> = {};
  for (const snap of snapshots) {
    const root = join(repo, 'snapshots', snap.commit);
    for (const [path, source] of Object.entries(snap.files)) {
      const sha = createHash('sha256').update(readFileSync(source)).digest('hex');
      const blob = join(repo, 'blobs', sha);
      mkdirSync(dirname(blob), { recursive: true });
      if (!existsSync(blob)) copyFileSync(source, blob);
      const link = join(root, path);
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(relative(dirname(link), blob), link);
    }
    out[snap.commit] = root;
  }
  for (const [ref, commit] of Object.entries(refs)) {
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', ref), commit);
  }
  return out;
}

/** The tiny Llama fixture in the onnx-community layout: configs at the top, onnx/model.onnx (+ its external data) and onnx/model_nopast.onnx. */
export function onnxCommunityFiles(fixtures: string): Record<string, string> {
  const llama = join(fixtures, 'models/llama');
  const files: Record<string, string> = {};
  for (const f of ['config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']) files[f] = join(llama, f);
  files['onnx/model.onnx'] = join(llama, 'model.onnx');
  files['onnx/model.onnx_data'] = join(llama, 'model.onnx_data');
  files['onnx/model_nopast.onnx'] = join(fixtures, 'models/llama-nopast/model.onnx');
  return files;
}
