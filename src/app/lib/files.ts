/**
 * Model folders in the browser: read from the files a user picked (an <input type="file" multiple
 * webkitdirectory> or a drop), written as downloads, one file each or one .tar of the folder.
 */
import { LabError } from '../../core/errors';
import { tarFolder, type FileSink, type FileSource } from '../../core/files';

/**
 * Picked files by name. File.name is the base name even when a directory was picked; on a clash
 * (a subfolder holding a file of the same name) the one nearest the top of the folder wins.
 */
export function pickedFilesSource(picked: FileList | File[], label = 'picked files'): FileSource {
  const depth = (f: File) => (f.webkitRelativePath || f.name).split('/').length;
  const byName = new Map<string, File>();
  for (const f of Array.from(picked)) {
    const seen = byName.get(f.name);
    if (!seen || depth(f) < depth(seen)) byName.set(f.name, f);
  }
  return {
    label,
    async list() {
      return [...byName.keys()];
    },
    async read(name) {
      const f = byName.get(name);
      if (!f) throw new LabError('files', `no picked file named ${name}`, { file: label, hint: 'Pick the whole model folder' });
      return new Uint8Array(await f.arrayBuffer());
    },
  };
}

function download(name: string, bytes: Uint8Array): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  // Let the browser start the download before the URL goes away.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Each file written becomes its own download, prefixed "folder-" so they group in the download list. */
export function downloadsSink(folder: string): FileSink {
  return {
    async write(name, bytes) {
      download(`${folder}-${name}`, bytes);
    },
  };
}

/** Collects the files; finish() downloads them as folder.tar (unpack with `tar -xf folder.tar`). */
export function tarDownloadSink(folder: string): FileSink & { finish(): void } {
  const files = new Map<string, Uint8Array>();
  return {
    async write(name, bytes) {
      files.set(name, bytes);
    },
    finish() {
      download(`${folder}.tar`, tarFolder(folder, files));
    },
  };
}
