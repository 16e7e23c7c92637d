// Private to lib/: the shape of a length-prefixed frame, shared by its
// encoders and decoders.
//
//   +--------+--------+--------+--------+------------------------+
//   |   payload length, u32 big-endian  |  payload (length bytes)|
//   +--------+--------+--------+--------+------------------------+

/** Bytes in the length header. */
export const HEADER_SIZE = 4;

/** The default cap on a payload: 1 MiB. */
export const DEFAULT_MAX_FRAME_SIZE = 1024 * 1024;

/** The largest length a u32 header can carry. */
export const MAX_U32 = 0xffff_ffff;

/** Checks a cap given by a caller. */
export function checkMaxFrameSize(maxFrameSize: number): void {
  if (!Number.isSafeInteger(maxFrameSize) || maxFrameSize < 0 || maxFrameSize > MAX_U32) {
    throw new RangeError(`maxFrameSize must be a whole number from 0 to ${MAX_U32}`);
  }
}
