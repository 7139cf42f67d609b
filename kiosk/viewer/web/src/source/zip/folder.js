// An unencrypted package (`kiosk export --no-encryption`): the folder itself, picked whole
// (a directory input gives every file with its path). The same Source as the zip's: the tree
// from DICOMDIR, reports and custody from the signed manifest, each file hashed as it is read.
import { PackageError, WORDS } from "./errors.js";

/** The files of a picked folder by package path: the folder's own name taken off. */
export function folderFiles(files) {
  const byPath = new Map();
  for (const file of files) {
    const rel = file.webkitRelativePath || file.name;
    const parts = rel.split("/");
    byPath.set(parts.length > 1 ? parts.slice(1).join("/") : rel, file);
  }
  return byPath;
}

/** Whether the picked files are an unencrypted package (DICOMDIR and MANIFEST.JSON at its root). */
export function isPlainFolder(files) {
  const byPath = folderFiles(files);
  return byPath.has("DICOMDIR") && byPath.has("MANIFEST.JSON");
}

/** Read a file of the folder through the pool (the SHA-256 comes with it). */
export async function readPlain(pool, byPath, name, { urgent, wantData }) {
  const file = byPath.get(name);
  if (!file) throw new PackageError("damaged", WORDS.damaged, `${name} is not in the folder`);
  return pool.run({ blob: file, encrypted: false, wantData }, { urgent });
}
