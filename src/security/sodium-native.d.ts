/**
 * Just enough of sodium-native v4's surface for password hashing and CURVE keys: the package ships no
 * types, and declaring only what `src/security/` calls keeps the rest out of reach by
 * accident. Signatures follow binding.c: every buffer argument is read or written in place.
 */
declare module 'sodium-native' {
  interface SodiumNative {
    /** Size of a `crypto_pwhash_str` output buffer, terminating NUL included (128). */
    readonly crypto_pwhash_STRBYTES: number;
    /** Operations limit for interactive logins (2 passes). */
    readonly crypto_pwhash_OPSLIMIT_INTERACTIVE: number;
    /** Memory limit for interactive logins, in bytes (64 MiB). */
    readonly crypto_pwhash_MEMLIMIT_INTERACTIVE: number;

    /**
     * Hashes `passwd` into `out` (exactly `crypto_pwhash_STRBYTES` long, NUL-padded) on the
     * libuv thread pool. Rejects when the hash cannot be computed (for example, no memory).
     */
    crypto_pwhash_str_async(
      out: Buffer,
      passwd: Buffer,
      opslimit: number,
      memlimit: number,
    ): Promise<void>;

    /**
     * Checks `passwd` against the NUL-terminated hash string in `str` (exactly
     * `crypto_pwhash_STRBYTES` long) on the libuv thread pool. Any failure, including a
     * malformed string, resolves to false.
     */
    crypto_pwhash_str_verify_async(str: Buffer, passwd: Buffer): Promise<boolean>;

    /** Octets of a Curve25519 key (32). */
    readonly crypto_scalarmult_BYTES: number;

    /** Writes into `q` (32 octets) the public key of the secret scalar `n` (32 octets): CURVE key pairs. */
    crypto_scalarmult_base(q: Buffer, n: Buffer): void;

    /** Overwrites `buf` with zeros in a way the compiler cannot optimise away. */
    sodium_memzero(buf: Buffer): void;
  }

  const sodium: SodiumNative;
  export default sodium;
}
