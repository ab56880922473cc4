/** Token texts of a stored run under its own checkpoint's tokenizer, as the rollouts' token view asks for them. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabService } from '../../src/core/lab/service';
import { nodeLabEnv } from '../../src/node/lab';
import { DiskRunStore } from '../../src/node/runstore';

const dir = mkdtempSync(join(os.tmpdir(), 'token-texts-'));
const service = new LabService(nodeLabEnv({ store: new DiskRunStore(join(dir, 'runs')), python: { size: 1, preload: [] } }));
afterAll(async () => {
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('runTokenTexts', () => {
  it("decodes ids with the run's checkpoint tokenizer, again and again, and names a run that does not exist", async () => {
    await service.init();
    await service.loadModel({ kind: 'shipped' });
    const id = await service.saveModel('saved');
    const ids = [...'print(6*7)'].map((c) => c.charCodeAt(0));
    const { checkpointTokenizer } = await import('../../src/core/tokenizer/index');
    const store = new DiskRunStore(join(dir, 'runs'));
    const tokenizer = (await checkpointTokenizer((await store.getCheckpoint(id))!))!;
    const encoded = tokenizer.encode('print(6*7)');
    expect(await service.runTokenTexts(id, encoded)).toEqual([...'print(6*7)']);
    expect(await service.runTokenTexts(id, encoded.slice(0, 5))).toEqual([...'print']);
    // An unknown run is an error naming it; it does not spoil the next call.
    await expect(service.runTokenTexts('no-such-run', ids)).rejects.toThrow(/no stored run has this id.*no-such-run/);
    expect((await service.runTokenTexts(id, encoded))?.join('')).toBe('print(6*7)');
  });
});
