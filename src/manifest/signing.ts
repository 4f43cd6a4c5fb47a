import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, timingSafeEqual, verify as edVerify, type KeyObject } from "node:crypto";
import type { LoadedSkill } from "./model.js";

export const SIGNATURE_FILE = "skill.sig";

export interface SignatureFile {
  version: 1;
  alg: "ed25519" | "hmac-sha256";
  keyId: string;
  /** sha256 of every signed file: the manifest and every module */
  files: Record<string, string>;
  signature: string;
}

/** What is signed: a fixed header and one line per file, path and sha256, sorted by path. */
export function signedPayload(manifestText: string, files: ReadonlyMap<string, string>): { payload: Buffer; digests: Record<string, string> } {
  const digests: Record<string, string> = { "skill.yaml": sha256(manifestText) };
  for (const [path, src] of files) digests[path] = sha256(src);
  const lines = Object.keys(digests)
    .sort()
    .map((p) => `${p}\0${digests[p]}`);
  return { payload: Buffer.from(["skillbox-signature-v1", ...lines].join("\n")), digests };
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export type SigningKey = { alg: "ed25519"; keyId: string; privateKey: KeyObject } | { alg: "hmac-sha256"; keyId: string; secret: string };

/** Reads a signing key: a PEM Ed25519 private key, or else the file's text as a shared HMAC secret. */
export function parseSigningKey(text: string, keyId?: string): SigningKey {
  if (text.includes("PRIVATE KEY-----")) {
    const privateKey = createPrivateKey(text);
    if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`the key is ${privateKey.asymmetricKeyType}, expected ed25519`);
    return { alg: "ed25519", keyId: keyId ?? "release", privateKey };
  }
  const secret = text.trim();
  if (secret.length < 16) throw new Error("an HMAC signing secret must be at least 16 characters");
  return { alg: "hmac-sha256", keyId: keyId ?? "hmac", secret };
}

export function signSkill(manifestText: string, files: ReadonlyMap<string, string>, key: SigningKey): SignatureFile {
  const { payload, digests } = signedPayload(manifestText, files);
  const signature = key.alg === "ed25519" ? edSign(null, payload, key.privateKey).toString("base64") : createHmac("sha256", key.secret).update(payload).digest("base64");
  return { version: 1, alg: key.alg, keyId: key.keyId, files: digests, signature };
}

/** A new Ed25519 key pair: the private key as PEM, the public key as base64 SPKI (for the policy's signing.keys). */
export function generateSigningKey(): { privatePem: string; publicSpki: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), publicSpki: publicKey.export({ type: "spki", format: "der" }).toString("base64") };
}

export type SignatureCheck = { valid: true; keyId: string; alg: string } | { valid: false; reason: string };

/**
 * Checks a skill's signature against the keys a policy pins (Ed25519 public keys) or the shared
 * HMAC key. Any changed, added or removed file makes it invalid.
 */
export function verifySkillSignature(skill: Pick<LoadedSkill, "manifestText" | "files" | "signature">, keys: Record<string, string>, hmacSecret: string | undefined): SignatureCheck {
  if (skill.signature === undefined || skill.manifestText === undefined) return { valid: false, reason: `no ${SIGNATURE_FILE} (sign it with \`skillbox sign <skill folder>\`)` };
  let sig: SignatureFile;
  try {
    sig = JSON.parse(skill.signature) as SignatureFile;
  } catch {
    return { valid: false, reason: `${SIGNATURE_FILE} is not valid JSON` };
  }
  const { payload, digests } = signedPayload(skill.manifestText, skill.files);
  const changed = Object.keys({ ...digests, ...sig.files }).filter((p) => digests[p] !== sig.files?.[p]);
  if (changed.length > 0) return { valid: false, reason: `changed since it was signed: ${changed.sort().join(", ")}` };
  const signature = Buffer.from(String(sig.signature), "base64");
  if (sig.alg === "hmac-sha256") {
    if (!hmacSecret) return { valid: false, reason: "signed with a shared HMAC key, but no HMAC key is configured (signing.hmacKeyEnv)" };
    const expected = createHmac("sha256", hmacSecret).update(payload).digest();
    return expected.length === signature.length && timingSafeEqual(expected, signature) ? { valid: true, keyId: sig.keyId, alg: sig.alg } : { valid: false, reason: "HMAC signature does not match" };
  }
  if (sig.alg === "ed25519") {
    const candidates = keys[sig.keyId] !== undefined ? [[sig.keyId, keys[sig.keyId]!]] : Object.entries(keys);
    for (const [id, spki] of candidates) {
      try {
        const pub = createPublicKey({ key: Buffer.from(spki!, "base64"), format: "der", type: "spki" });
        if (edVerify(null, payload, pub, signature)) return { valid: true, keyId: id!, alg: sig.alg };
      } catch {
        /* a malformed pinned key never verifies */
      }
    }
    return { valid: false, reason: `Ed25519 signature by "${sig.keyId}" does not verify with any key the policy pins` };
  }
  return { valid: false, reason: `unknown signature algorithm ${JSON.stringify(sig.alg)}` };
}
