// The stick source: split AES zip over Blob.slice. See docs/viewer.md.
export {};
