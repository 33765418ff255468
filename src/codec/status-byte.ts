// The first byte of every stored data fragment: which transforms the codec applied.

/** Bit 7: the payload is zstd-compressed (compression only kept when strictly smaller). */
export const STATUS_COMPRESSED = 0x80;
/** Bit 6: the payload is AES-256-GCM ciphertext || 16-byte tag. */
export const STATUS_ENCRYPTED = 0x40;
/** Bits 5..0 are reserved: writers MUST write 0, readers MUST reject a block with any set. */
export const STATUS_RESERVED_MASK = 0x3f;

/** Status byte (1) + big-endian crc32 of the payload (4). */
export const STORED_HEADER_LEN = 5;

export interface BlockStatus {
  compressed: boolean;
  encrypted: boolean;
}

export function makeStatus(s: BlockStatus): number {
  return (s.compressed ? STATUS_COMPRESSED : 0) | (s.encrypted ? STATUS_ENCRYPTED : 0);
}

/** Undefined when a reserved bit is set (the block is from an unknown format or damaged). */
export function parseStatus(byte: number): BlockStatus | undefined {
  if ((byte & STATUS_RESERVED_MASK) !== 0) return undefined;
  return { compressed: (byte & STATUS_COMPRESSED) !== 0, encrypted: (byte & STATUS_ENCRYPTED) !== 0 };
}
