import { ed25519PrivateKey, type CheckpointSigner } from "./chain.js";

/** Slots of the shared Int32Array through which the writer thread reports, readable synchronously. */
export const SLOT = { lost: 0, healthy: 1, flushed: 2, processed: 3 } as const;
export const SLOTS = 4;

export interface WriterConfig {
  file: string;
  key?: string | undefined;
  /** PEM of an Ed25519 private key, or the HMAC key, for checkpoint signatures */
  signer?: { alg: "ed25519"; pem: string } | { alg: "hmac-sha256"; key: string } | undefined;
  anchor?: string | undefined;
  checkpointEveryLines?: number | undefined;
  checkpointEveryMs?: number | undefined;
}

export type ToWriter = { t: "lines"; lines: string[]; dropped?: { count: number; from: string; to: string } } | { t: "flush"; id: number } | { t: "close"; id: number };

export type FromWriter = { t: "status"; message: string } | { t: "flushed"; id: number } | { t: "closed"; id: number };

/** The signer a config names (the Ed25519 key is parsed here: a bad one throws a readable error). */
export function signerOf(c: WriterConfig): CheckpointSigner | undefined {
  if (!c.signer) return undefined;
  if (c.signer.alg === "hmac-sha256") return c.signer;
  return { alg: "ed25519", key: ed25519PrivateKey(c.signer.pem, "audit signing key") };
}
