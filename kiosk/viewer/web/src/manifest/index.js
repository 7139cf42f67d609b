// The signed manifest: JWS check and per-file hashes. See docs/viewer.md.
export {};
