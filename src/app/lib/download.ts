/**
 * Downloads from the page: a file, or a folder as one .tar (`tar -xf NAME.tar` unpacks it on Linux,
 * macOS and Windows 10+).
 */
import { writeTar } from '../../core/lab/index';

export function downloadFile(name: string, bytes: Uint8Array): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  // Let the browser start the download before the URL goes away.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The files (names inside the folder) as `folder.tar`. */
export function downloadFolder(folder: string, files: Record<string, Uint8Array>): void {
  downloadFile(`${folder}.tar`, writeTar(folder, new Map(Object.entries(files))));
}
