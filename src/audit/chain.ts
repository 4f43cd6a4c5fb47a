import { createHash, createHmac, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

export const GENESIS = "0".repeat(64);

/** Hash of one log line (without its newline): SHA-256, or HMAC-SHA256 when a key is set. */
export function lineHash(line: string, key?: string): string {
  return key ? createHmac("sha256", key).update(line).digest("hex") : createHash("sha256").update(line).digest("hex");
}

/** The one stamping rule both sinks use: `seq` and `prev` first, then the event's own keys. */
export function stampLine(json: string, seq: number, prev: string): string {
  return `{"seq":${seq},"prev":"${prev}",${json.slice(1)}`;
}

/** A signature over a chain head: proves the log reached `seq` with that line's hash. */
export interface HeadSignature {
  alg: "hmac-sha256" | "ed25519";
  value: string;
}

/** What signs checkpoints: the chain's HMAC key, or an Ed25519 private key the operator holds. */
export type CheckpointSigner = { alg: "hmac-sha256"; key: string } | { alg: "ed25519"; key: KeyObject };

/** What checks them: the HMAC key, or the Ed25519 public key (PEM, or base64 SPKI as `skillbox keygen` prints it). */
export interface CheckpointKeys {
  hmacKey?: string | undefined;
  publicKey?: KeyObject | undefined;
}

function headMessage(seq: number, hash: string): string {
  return `skillbox.audit.head.v1:${seq}:${hash}`;
}

export function signHead(signer: CheckpointSigner, seq: number, hash: string): HeadSignature {
  const msg = headMessage(seq, hash);
  if (signer.alg === "hmac-sha256") return { alg: "hmac-sha256", value: createHmac("sha256", signer.key).update(msg).digest("hex") };
  return { alg: "ed25519", value: sign(null, Buffer.from(msg), signer.key).toString("base64") };
}

/** true: valid; false: invalid; undefined: no key to check this kind of signature with. */
export function checkHead(keys: CheckpointKeys, seq: number, hash: string, sig: unknown): boolean | undefined {
  if (typeof sig !== "object" || sig === null) return false;
  const { alg, value } = sig as { alg?: unknown; value?: unknown };
  if (typeof value !== "string") return false;
  const msg = headMessage(seq, hash);
  if (alg === "hmac-sha256") {
    if (keys.hmacKey === undefined) return undefined;
    return createHmac("sha256", keys.hmacKey).update(msg).digest("hex") === value;
  }
  if (alg === "ed25519") {
    if (keys.publicKey === undefined) return undefined;
    try {
      return verify(null, Buffer.from(msg), keys.publicKey, Buffer.from(value, "base64"));
    } catch {
      return false;
    }
  }
  return false;
}

/** An Ed25519 private key from PEM text (as `skillbox keygen` writes it). Throws a readable error. */
export function ed25519PrivateKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${source}: not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`${source}: an Ed25519 key is needed (skillbox keygen FILE makes one), got ${key.asymmetricKeyType}`);
  return key;
}

/** An Ed25519 public key from PEM, or base64 SPKI DER (what `skillbox keygen` prints), or the private key PEM. */
export function ed25519PublicKey(text: string, source: string): KeyObject {
  const t = text.trim();
  let key: KeyObject;
  try {
    if (t.includes("PRIVATE KEY")) key = createPublicKey(createPrivateKey(t));
    else if (t.startsWith("-----")) key = createPublicKey(t);
    else key = createPublicKey({ key: Buffer.from(t, "base64"), format: "der", type: "spki" });
  } catch (err) {
    throw new Error(`${source}: not an Ed25519 public key (PEM or base64 SPKI): ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`${source}: an Ed25519 key is needed, got ${key.asymmetricKeyType}`);
  return key;
}
