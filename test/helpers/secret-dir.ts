import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A directory laid out the way the kubelet mounts a Secret: the files are
 * symlinks into `..data`, itself a symlink to a timestamped directory, and an
 * update swaps `..data` atomically with a rename.
 */
export async function kubeSecretDir(files: Record<string, string>): Promise<{ dir: string; update(files: Record<string, string>): Promise<void>; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fo-kube-secret-'));
  let generation = 0;
  const update = async (next: Record<string, string>): Promise<void> => {
    generation += 1;
    const payload = `..${Date.now()}_${generation}`;
    await mkdir(join(dir, payload));
    for (const [name, text] of Object.entries(next)) await writeFile(join(dir, payload, name), text);
    await symlink(payload, join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    for (const name of Object.keys(next)) {
      await symlink(join('..data', name), join(dir, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
  };
  await update(files);
  return { dir, update, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
